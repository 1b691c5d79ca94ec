//! festival-photo: making a photo fit to send: whatever a person picks (JPEG, PNG, WebP or
//! GIF, up to [`MAX_INPUT_BYTES`]) is decoded within limits (a
//! decompression bomb is refused before it is decoded), turned upright by
//! its EXIF orientation, downscaled to at most
//! [`festival_core::photo::MAX_SIDE`] pixels and re-encoded as a JPEG of
//! at most [`festival_core::photo::MAX_PHOTO_BYTES`], with a thumbnail of
//! at most [`festival_core::photo::MAX_THUMB_BYTES`]. Re-encoding from the
//! pixels writes no metadata: EXIF (the camera, the time, the place) and
//! every other segment of the original are left behind.

use std::io::Cursor;

use festival_core::photo::{MAX_PHOTO_BYTES, MAX_SIDE, MAX_THUMB_BYTES};
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// Largest file taken (a 48-megapixel phone photo is about 20 MB).
pub const MAX_INPUT_BYTES: usize = 40 * 1024 * 1024;
/// Largest side of a picture that is decoded at all.
pub const MAX_INPUT_SIDE: u32 = 16_384;
/// Most memory the decoded picture may take (a 48-megapixel RGB photo is
/// 144 MB; a 16-bit RGBA picture takes 8 bytes a pixel). One picture is
/// prepared at a time (`festival_node`'s `send_photo`), so this bounds the
/// memory photos take, with the brought-down copy made from it (at most
/// 3200 pixels a side).
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 200;
/// JPEG qualities tried in turn, best first, until the photo fits.
const QUALITIES: [u8; 4] = [82, 72, 62, 52];

/// A photo ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub jpeg: Vec<u8>,
    pub width: u16,
    pub height: u16,
    pub thumb: Vec<u8>,
}

/// Why a file cannot be sent as a photo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("the file is {len} bytes; photos of up to {max} bytes are taken")]
    TooLarge { len: usize, max: usize },
    #[error("the file is not a picture")]
    NotAnImage,
    #[error("pictures of this kind cannot be sent (JPEG, PNG, WebP or GIF can)")]
    Unsupported,
    #[error("the picture is too big to open ({0})")]
    TooManyPixels(String),
    #[error("the picture could not be read: {0}")]
    Damaged(String),
}

/// Decode, turn upright, downscale and re-encode `bytes`.
pub fn prepare(bytes: &[u8]) -> Result<Prepared, PhotoError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(PhotoError::TooLarge { len: bytes.len(), max: MAX_INPUT_BYTES });
    }
    let img = decode(bytes)?;
    // A big picture is first brought near the size it will have with a
    // fast sampler (the fine filter below then works on at most twice
    // the final size, not on 48 megapixels), then flattened.
    let img =
        if img.width().max(img.height()) > 2 * MAX_SIDE { img.thumbnail(2 * MAX_SIDE, 2 * MAX_SIDE) } else { img };
    let img = fit(&flatten(img), MAX_SIDE);
    let (w, h) = img.dimensions();
    let mut side = w.max(h);
    loop {
        let scaled = fit(&img, side);
        let mut smallest = usize::MAX;
        for q in QUALITIES {
            let jpeg = encode(&scaled, q)?;
            if jpeg.len() <= MAX_PHOTO_BYTES {
                let thumb = thumbnail(&scaled)?;
                let (width, height) = scaled.dimensions();
                // Both at most MAX_SIDE, which fits in u16.
                return Ok(Prepared { jpeg, width: width as u16, height: height as u16, thumb });
            }
            smallest = smallest.min(jpeg.len());
        }
        // Still too big at the lowest quality (a picture of noise): fewer
        // pixels, by the share of bytes over (a JPEG's size goes about
        // with its area), and a little more.
        let shrink = (MAX_PHOTO_BYTES as f64 / smallest as f64).sqrt().min(0.8) * 0.95;
        side = (f64::from(side) * shrink) as u32;
        if side < 16 {
            return Err(PhotoError::Damaged("it does not compress".into()));
        }
    }
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, PhotoError> {
    let mut reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| PhotoError::Damaged(e.to_string()))?;
    match reader.format() {
        None => return Err(PhotoError::NotAnImage),
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif) => {}
        Some(_) => return Err(PhotoError::Unsupported),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (w, h) = decoder.dimensions();
    // What the decoded pixels take (a 16-bit RGBA pixel is 8 bytes), checked
    // from the header before any pixel is decoded: `into_decoder` does not
    // hold the decoder to `max_alloc` for its output.
    if decoder.total_bytes() > MAX_DECODE_ALLOC {
        return Err(PhotoError::TooManyPixels(format!("{w} x {h}, {} bytes decoded", decoder.total_bytes())));
    }
    if w == 0 || h == 0 {
        return Err(PhotoError::Damaged("it has no pixels".into()));
    }
    // A picture without EXIF, or with one that does not parse, is upright.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    img.apply_orientation(orientation);
    Ok(img)
}

fn image_error(e: image::ImageError) -> PhotoError {
    match e {
        image::ImageError::Limits(l) => PhotoError::TooManyPixels(l.to_string()),
        image::ImageError::Unsupported(_) => PhotoError::Unsupported,
        e => PhotoError::Damaged(e.to_string()),
    }
}

/// RGB on white: what was transparent shows white, not black.
fn flatten(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        let blend = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    })
}

/// `img` with its longest side at most `side`.
fn fit(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w.max(h) <= side {
        return img.clone();
    }
    let (nw, nh) = if w >= h {
        (side, ((u64::from(h) * u64::from(side)) / u64::from(w)).max(1) as u32)
    } else {
        (((u64::from(w) * u64::from(side)) / u64::from(h)).max(1) as u32, side)
    };
    image::imageops::resize(img, nw, nh, FilterType::CatmullRom)
}

fn encode(img: &RgbImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| PhotoError::Damaged(e.to_string()))?;
    Ok(out)
}

fn thumbnail(img: &RgbImage) -> Result<Vec<u8>, PhotoError> {
    let mut side = THUMB_SIDE;
    loop {
        let small = fit(img, side);
        for q in [60, 45, 30] {
            let jpeg = encode(&small, q)?;
            if jpeg.len() <= MAX_THUMB_BYTES {
                return Ok(jpeg);
            }
        }
        side /= 2;
        if side < 8 {
            return Err(PhotoError::Damaged("no thumbnail fits".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture with some detail, as photos have: gradients and rings.
    fn picture(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (dx, dy) = (f64::from(x) - f64::from(w) / 2.0, f64::from(y) - f64::from(h) / 2.0);
            let ring = ((dx * dx + dy * dy).sqrt() / 9.0).sin() * 60.0 + 128.0;
            image::Rgb([(x * 255 / w) as u8, ring as u8, (y * 255 / h) as u8])
        })
    }

    /// A picture of noise: JPEG cannot make it small.
    fn noise(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503).rotate_left(7);
            image::Rgb([(v >> 3) as u8, (v >> 11) as u8, (v >> 19) as u8])
        })
    }

    fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A JPEG with an EXIF segment (after the start-of-image marker) that
    /// says "rotate 90 degrees clockwise to show" and carries a place.
    fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
        tiff.extend_from_slice(&2u16.to_be_bytes());
        // Orientation, SHORT, one value.
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        // ImageDescription, ASCII: a place, as GPS data would be.
        let place = b"GPS 52.5200N 13.4050E\0";
        tiff.extend_from_slice(&[0x01, 0x0E, 0, 2]);
        tiff.extend_from_slice(&(place.len() as u32).to_be_bytes());
        tiff.extend_from_slice(&(8 + 2 + 24 + 4u32).to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(place);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_big_photo_is_downscaled_reencoded_and_fits() {
        let big = DynamicImage::ImageRgb8(picture(2000, 1500));
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let p = prepare(&encoded(&big, format)).unwrap();
            assert_eq!((p.width, p.height), (1600, 1200), "{format:?}");
            assert!(p.jpeg.len() <= MAX_PHOTO_BYTES && p.thumb.len() <= MAX_THUMB_BYTES, "{format:?}");
            let back = image::load_from_memory(&p.jpeg).unwrap();
            assert_eq!((back.width(), back.height()), (1600, 1200));
            let thumb = image::load_from_memory_with_format(&p.thumb, ImageFormat::Jpeg).unwrap();
            assert_eq!(thumb.width().max(thumb.height()), THUMB_SIDE);
            assert!(festival_core::photo::cut(&p.jpeg, p.width, p.height, String::new(), p.thumb).is_ok());
        }
        // Noise does not fit at 1600 pixels even at the lowest quality:
        // it is made smaller until it does.
        let p = prepare(&encoded(&DynamicImage::ImageRgb8(noise(2000, 1500)), ImageFormat::Png)).unwrap();
        assert!(p.width < 1600 && p.jpeg.len() <= MAX_PHOTO_BYTES, "{} x {}", p.width, p.height);
        let (w, h) = (i64::from(p.width), i64::from(p.height));
        assert!((w * 3 - h * 4).abs() <= 4, "the same shape, but for rounding: {w} x {h}");
        // A small one keeps its size; a tall one fits on its long side.
        let p = prepare(&encoded(&DynamicImage::ImageRgb8(picture(300, 200)), ImageFormat::Png)).unwrap();
        assert_eq!((p.width, p.height), (300, 200));
        let p = prepare(&encoded(&DynamicImage::ImageRgb8(picture(500, 4000)), ImageFormat::Png)).unwrap();
        assert_eq!((p.width, p.height), (200, 1600));
    }

    #[test]
    fn exif_is_applied_then_left_behind() {
        let jpeg = encoded(&DynamicImage::ImageRgb8(picture(400, 100)), ImageFormat::Jpeg);
        let tagged = with_exif(&jpeg, 6);
        assert!(contains(&tagged, b"Exif") && contains(&tagged, b"GPS 52.52"));
        let p = prepare(&tagged).unwrap();
        // Shown upright: the camera's "rotate 90" is done to the pixels.
        assert_eq!((p.width, p.height), (100, 400));
        for bytes in [&p.jpeg, &p.thumb] {
            assert!(!contains(bytes, b"Exif") && !contains(bytes, b"GPS") && !contains(bytes, b"52.52"));
        }
    }

    #[test]
    fn what_is_not_a_picture_or_too_big_is_refused_with_a_reason() {
        assert_eq!(prepare(b"hello, this is text").unwrap_err(), PhotoError::NotAnImage);
        assert_eq!(prepare(&[]).unwrap_err(), PhotoError::NotAnImage);
        let huge = vec![0u8; MAX_INPUT_BYTES + 1];
        assert!(matches!(prepare(&huge), Err(PhotoError::TooLarge { .. })));
        // A BMP is a picture, but not one of the kinds taken.
        let bmp = b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0";
        assert_eq!(prepare(bmp).unwrap_err(), PhotoError::Unsupported);
        // A PNG cut short.
        let png = encoded(&DynamicImage::ImageRgb8(picture(64, 64)), ImageFormat::Png);
        assert!(matches!(prepare(&png[..png.len() / 2]), Err(PhotoError::Damaged(_))));
    }

    /// A PNG whose header claims `w` x `h` pixels and whose data is a few
    /// bytes: what a decompression bomb looks like before it is inflated.
    fn bomb_png(w: u32, h: u32) -> Vec<u8> {
        let small = encoded(&DynamicImage::ImageLuma8(image::GrayImage::new(8, 8)), ImageFormat::Png);
        let mut png = small.clone();
        // IHDR's data starts after the 8-byte signature, length and type.
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_it_is_decoded() {
        for (w, h) in [(100_000, 100_000), (16_000, 17_000), (MAX_INPUT_SIDE + 1, 10)] {
            // Refused from the header: the pixels are never inflated.
            let err = prepare(&bomb_png(w, h)).unwrap_err();
            assert!(matches!(err, PhotoError::TooManyPixels(_)), "{w} x {h}: {err:?}");
        }
        // 6000 x 6000 is fine at 8 bits a channel of grey, and 288 MB
        // decoded at 16 bits of RGBA: refused.
        let mut deep = bomb_png(6_000, 6_000);
        deep[24] = 16; // bit depth
        deep[25] = 6; // RGBA
        let crc = crc32(&deep[12..29]);
        deep[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = prepare(&deep).unwrap_err();
        assert!(matches!(err, PhotoError::TooManyPixels(_)), "{err:?}");
        assert!(!matches!(prepare(&bomb_png(6_000, 6_000)), Err(PhotoError::TooManyPixels(_))), "a grey one is opened");
        // The same trick on a JPEG's frame header (no checksum there).
        let mut jpeg = encoded(&DynamicImage::ImageRgb8(picture(16, 16)), ImageFormat::Jpeg);
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
        assert!(matches!(prepare(&jpeg), Err(PhotoError::TooManyPixels(_))));
    }
}
