//! Photos: a JPEG of at most [`MAX_PHOTO_BYTES`], carried as its own
//! chunked, signed content in a room.
//!
//! A photo is a header envelope (kind `Photo`: the size, the BLAKE3 hash of
//! the JPEG, its pixel size, an optional caption and a small thumbnail)
//! followed in its author's chain by its chunks (kind `PhotoChunk`: the
//! header's id, the chunk's index and at most [`CHUNK_BYTES`] of the JPEG).
//! Chunk `i` is the author's message `seq + 1 + i` after the header's
//! `seq`, so a reader finds them without an index, and the header (with the
//! thumbnail) comes first in every catch-up.
//!
//! Every piece is an envelope signed by its author: carriers verify,
//! store, budget, expire and sync them as any other message, and a peer
//! can only spend its own budget. Chunks travel behind text: their pushes
//! are sync traffic in a link's send queue ([`crate::frame::Frame::priority`]),
//! and a node on low battery, which stops working for others, carries none.
//! [`assemble`] checks the chunks against the header (ids, positions,
//! sizes, hash) before anyone shows the photo.

use serde::{Deserialize, Serialize};

use crate::body::{BodyError, MAX_TEXT_BYTES};
use crate::envelope::{Kind, SignedEnvelope};
use crate::ids::MessageId;

/// Largest photo, in bytes of JPEG: a 1600-pixel photo at a good quality.
pub const MAX_PHOTO_BYTES: usize = 256 * 1024;
/// Most bytes of the JPEG in one chunk: an envelope stays under
/// [`crate::envelope::MAX_BODY_BYTES`] with room for the header fields.
pub const CHUNK_BYTES: usize = 15 * 1024;
/// Most chunks a photo has (a photo of [`MAX_PHOTO_BYTES`]).
pub const MAX_CHUNKS: usize = MAX_PHOTO_BYTES.div_ceil(CHUNK_BYTES);
/// Longest side of a photo, in pixels.
pub const MAX_SIDE: u32 = 1600;
/// Largest thumbnail, in bytes of JPEG.
pub const MAX_THUMB_BYTES: usize = 12 * 1024;
/// Longest caption, in bytes of UTF-8 (a caption is optional).
pub const MAX_CAPTION_BYTES: usize = 1000;
/// Longest side of a thumbnail, in pixels (the reference makes 200).
pub const MAX_THUMB_SIDE: u16 = 320;
/// A JPEG's first bytes: start of image, then a marker.
const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// The pixel size (width, height) a JPEG's frame header says, read from
/// its markers without decoding anything; `None` when the bytes are not a
/// JPEG with a frame header before its scan. So a receiver knows what it
/// would ask the picture decoder to allocate before it does.
pub fn jpeg_size(bytes: &[u8]) -> Option<(u16, u16)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        match marker {
            // A fill byte, or a marker without a length.
            0xFF => i += 1,
            0x01 | 0xD0..=0xD8 => i += 2,
            // The end, or the scan, before any frame header.
            0xD9 | 0xDA => return None,
            _ => {
                let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
                if len < 2 {
                    return None;
                }
                // SOF0..SOF15, but for DHT (C4), JPG (C8) and DAC (CC).
                if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                    let seg = bytes.get(i + 4..i + 2 + len)?;
                    let (h, w) = (
                        u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]),
                        u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]),
                    );
                    return Some((w, h));
                }
                i += 2 + len;
            }
        }
    }
    None
}

/// Bytes that pass every check of the protocol for a JPEG of `width` x
/// `height` and `len` bytes (a 21-byte frame header, then filler; never
/// shorter than the header), for tests and
/// benchmarks of what carries photos: no decoder can show them.
pub fn frame_only_jpeg(len: usize, width: u16, height: u16) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    v.extend((v.len()..len.max(v.len())).map(|i| (i * 13 % 251) as u8));
    v.truncate(len.max(21));
    v
}

/// The header of a photo. The JPEG's chunks follow it in the author's chain.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PhotoBody {
    /// Bytes of the JPEG, 1 to [`MAX_PHOTO_BYTES`].
    pub size: u32,
    /// BLAKE3 of the JPEG.
    pub hash: [u8; 32],
    /// Pixel size, each 1 to [`MAX_SIDE`].
    pub width: u16,
    pub height: u16,
    /// What the author wrote with it; may be empty.
    pub caption: String,
    /// A small JPEG shown until the photo has come.
    pub thumb: Vec<u8>,
}

impl PhotoBody {
    /// How many chunks carry the JPEG.
    pub fn chunks(&self) -> usize {
        (self.size as usize).div_ceil(CHUNK_BYTES)
    }
}

/// One piece of a photo's JPEG.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PhotoChunkBody {
    /// The header's id.
    pub photo: MessageId,
    /// 0-based; the chunk is the author's message `header seq + 1 + index`.
    pub index: u16,
    pub data: Vec<u8>,
}

/// What a header must keep (checked on every envelope of kind `Photo`).
pub fn check_header(p: &PhotoBody) -> Result<(), BodyError> {
    let bad = |()| Err(BodyError::Malformed(Kind::Photo));
    if p.size == 0 || p.size as usize > MAX_PHOTO_BYTES {
        return bad(());
    }
    let side = |s: u16| (1..=MAX_SIDE).contains(&u32::from(s));
    if !side(p.width) || !side(p.height) {
        return bad(());
    }
    // A JPEG, small in bytes and in pixels: a thumbnail is shown as it
    // comes, and a few bytes could otherwise claim 65,535 pixels a side.
    let thumb_ok = |(w, h): (u16, u16)| w >= 1 && h >= 1 && w <= MAX_THUMB_SIDE && h <= MAX_THUMB_SIDE;
    if p.thumb.len() > MAX_THUMB_BYTES
        || !p.thumb.starts_with(&JPEG_MAGIC)
        || !jpeg_size(&p.thumb).is_some_and(thumb_ok)
    {
        return bad(());
    }
    if !p.caption.is_empty() {
        if p.caption.len() > MAX_CAPTION_BYTES.min(MAX_TEXT_BYTES) {
            return Err(BodyError::TextTooLong { len: p.caption.len(), max: MAX_CAPTION_BYTES });
        }
        crate::body::check_text(&p.caption)?;
    }
    Ok(())
}

/// What a chunk must keep on its own (the rest is checked against its
/// header by [`assemble`]).
pub fn check_chunk(c: &PhotoChunkBody) -> Result<(), BodyError> {
    if usize::from(c.index) >= MAX_CHUNKS || c.data.is_empty() || c.data.len() > CHUNK_BYTES {
        return Err(BodyError::Malformed(Kind::PhotoChunk));
    }
    Ok(())
}

/// A JPEG cut for sending: the header's fields and the chunks' data.
pub struct Cut {
    pub header: PhotoBody,
    pub chunks: Vec<Vec<u8>>,
}

/// Cut `jpeg` into a header and chunks, checking what a receiver checks.
pub fn cut(jpeg: &[u8], width: u16, height: u16, caption: String, thumb: Vec<u8>) -> Result<Cut, PhotoError> {
    if jpeg.is_empty() || jpeg.len() > MAX_PHOTO_BYTES {
        return Err(PhotoError::Size);
    }
    if !jpeg.starts_with(&JPEG_MAGIC) || jpeg_size(jpeg) != Some((width, height)) {
        return Err(PhotoError::NotJpeg);
    }
    let header =
        PhotoBody { size: jpeg.len() as u32, hash: *blake3::hash(jpeg).as_bytes(), width, height, caption, thumb };
    check_header(&header).map_err(PhotoError::Header)?;
    Ok(Cut { header, chunks: jpeg.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect() })
}

/// Why a photo cannot be put together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("a photo is 1 to {MAX_PHOTO_BYTES} bytes of JPEG")]
    Size,
    #[error("a photo travels as a JPEG whose frame says the photo's size")]
    NotJpeg,
    #[error("bad photo header: {0}")]
    Header(BodyError),
    #[error("chunk {0} is missing")]
    Missing(usize),
    #[error("chunk {0} does not belong to the photo (author, place, id or size)")]
    Foreign(usize),
    #[error("the chunks do not hash to the photo's hash")]
    Hash,
}

/// Put a photo together from its header envelope and the author's
/// messages after it (`following[i]` should be chunk `i`, at seq
/// `header seq + 1 + i`). Every chunk must name the header, sit at its
/// place, be full but for the last, the whole must hash to the header's
/// hash, and its frame header must say the header's pixel size.
pub fn assemble(header: &SignedEnvelope, following: &[SignedEnvelope]) -> Result<Vec<u8>, PhotoError> {
    let crate::body::Body::Photo(p) = header.parsed_body() else {
        return Err(PhotoError::Header(BodyError::Malformed(header.kind())));
    };
    let n = p.chunks();
    let mut jpeg = Vec::with_capacity(p.size as usize);
    for i in 0..n {
        let env = following.get(i).ok_or(PhotoError::Missing(i))?;
        let crate::body::Body::PhotoChunk(c) = env.parsed_body() else { return Err(PhotoError::Foreign(i)) };
        let last = i + 1 == n;
        let want_len = if last { p.size as usize - CHUNK_BYTES * (n - 1) } else { CHUNK_BYTES };
        if env.author() != header.author()
            || env.room() != header.room()
            || env.seq() != header.seq() + 1 + i as u64
            || c.photo != header.id()
            || usize::from(c.index) != i
            || c.data.len() != want_len
        {
            return Err(PhotoError::Foreign(i));
        }
        jpeg.extend_from_slice(&c.data);
    }
    if blake3::hash(&jpeg).as_bytes() != &p.hash {
        return Err(PhotoError::Hash);
    }
    // What the author hashed must also be the picture the header says.
    if jpeg_size(&jpeg) != Some((p.width, p.height)) {
        return Err(PhotoError::NotJpeg);
    }
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Body;
    use crate::envelope::Draft;
    use crate::identity::Identity;
    use crate::ids::RoomId;

    fn jpeg(len: usize) -> Vec<u8> {
        frame_only_jpeg(len, 800, 600)
    }

    fn thumb() -> Vec<u8> {
        frame_only_jpeg(500, 200, 150)
    }

    fn sign(me: &Identity, seq: u64, body: Body) -> SignedEnvelope {
        let room: RoomId = "camp".parse().unwrap();
        SignedEnvelope::sign(me, Draft { seq, room, kind: body.kind(), created_at: 1, body: body.encode() }).unwrap()
    }

    fn photo(me: &Identity, seq: u64, bytes: &[u8]) -> (SignedEnvelope, Vec<SignedEnvelope>) {
        let cut = cut(bytes, 800, 600, "the stage".into(), thumb()).unwrap();
        let header = sign(me, seq, Body::Photo(cut.header));
        let chunks = cut
            .chunks
            .into_iter()
            .enumerate()
            .map(|(i, data)| {
                let c = PhotoChunkBody { photo: header.id(), index: i as u16, data };
                sign(me, seq + 1 + i as u64, Body::PhotoChunk(c))
            })
            .collect();
        (header, chunks)
    }

    #[test]
    fn a_photo_goes_back_together_only_from_its_own_chunks() {
        let me = Identity::from_secret_bytes(&[1; 32]);
        let bytes = jpeg(MAX_PHOTO_BYTES);
        let (header, chunks) = photo(&me, 4, &bytes);
        assert_eq!(chunks.len(), MAX_CHUNKS);
        assert!(chunks.iter().all(|c| c.bytes().len() <= crate::envelope::MAX_ENVELOPE_BYTES));
        assert_eq!(assemble(&header, &chunks).unwrap(), bytes);
        assert_eq!(assemble(&header, &chunks[..5]), Err(PhotoError::Missing(5)));
        // Another photo's chunk, though signed by the same author at the
        // same place, does not fit.
        let (_, other) = photo(&me, 4, &jpeg(MAX_PHOTO_BYTES - 1));
        let mut mixed = chunks.clone();
        mixed[3] = other[3].clone();
        assert_eq!(assemble(&header, &mixed), Err(PhotoError::Foreign(3)));
        // Chunks out of place, or from another author, do not fit either.
        let mut swapped = chunks.clone();
        swapped.swap(0, 1);
        assert_eq!(assemble(&header, &swapped), Err(PhotoError::Foreign(0)));
        let eve = Identity::from_secret_bytes(&[2; 32]);
        let mut forged = chunks.clone();
        let c = PhotoChunkBody { photo: header.id(), index: 2, data: vec![0; CHUNK_BYTES] };
        forged[2] = sign(&eve, header.seq() + 3, Body::PhotoChunk(c.clone()));
        assert_eq!(assemble(&header, &forged), Err(PhotoError::Foreign(2)));
        // The author's own chunk with other bytes: the hash tells.
        forged[2] = sign(&me, header.seq() + 3, Body::PhotoChunk(c));
        assert_eq!(assemble(&header, &forged), Err(PhotoError::Hash));
        // A small photo is one chunk.
        let (h, c) = photo(&me, 1, &jpeg(1000));
        assert_eq!((c.len(), assemble(&h, &c).unwrap().len()), (1, 1000));
    }

    #[test]
    fn a_jpegs_size_is_read_from_its_frame_header() {
        assert_eq!(jpeg_size(&frame_only_jpeg(100, 1600, 1067)), Some((1600, 1067)));
        // After an APP0 segment, a DHT table and fill bytes.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 6, b'J', b'F', b'I', b'F', 0xFF, 0xC4, 0, 3, 0, 0xFF, 0xFF];
        j.extend_from_slice(&[0xC2, 0, 11, 8, 0, 30, 0, 40, 1, 1, 0x11, 0]);
        assert_eq!(jpeg_size(&j), Some((40, 30)), "progressive (SOF2)");
        // No frame before the scan, cut short, or not a JPEG.
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(jpeg_size(&frame_only_jpeg(100, 5, 5)[..9]), None);
        assert_eq!(jpeg_size(b"GIF89a........"), None);
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]), None, "a length below 2");
    }

    #[test]
    fn headers_and_chunks_are_checked_on_their_own() {
        let ok = cut(&frame_only_jpeg(3000, 1600, 1), 1600, 1, String::new(), thumb()).unwrap().header;
        assert!(check_header(&ok).is_ok());
        let bad = |f: &dyn Fn(&mut PhotoBody)| {
            let mut p = ok.clone();
            f(&mut p);
            Body::parse(Kind::Photo, &Body::Photo(p).encode()).is_err()
        };
        assert!(bad(&|p| p.size = 0));
        assert!(bad(&|p| p.size = MAX_PHOTO_BYTES as u32 + 1));
        assert!(bad(&|p| p.width = 1601));
        assert!(bad(&|p| p.height = 0));
        assert!(bad(&|p| p.thumb = b"GIF89a".to_vec()));
        assert!(bad(&|p| p.thumb = frame_only_jpeg(MAX_THUMB_BYTES + 1, 100, 100)));
        // A thumbnail of a few bytes that claims 4000 x 3000 pixels, or no frame.
        assert!(bad(&|p| p.thumb = frame_only_jpeg(300, 4000, 3000)));
        assert!(bad(&|p| p.thumb = [0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0].to_vec()));
        assert!(bad(&|p| p.caption = "  ".into()));
        assert!(bad(&|p| p.caption = "x".repeat(MAX_CAPTION_BYTES + 1)));
        assert!(!bad(&|p| p.caption = "🎡 at night".into()));
        assert_eq!(cut(&jpeg(MAX_PHOTO_BYTES + 1), 800, 600, String::new(), thumb()).err(), Some(PhotoError::Size));
        // A JPEG whose frame says another size than the header would.
        assert_eq!(cut(&jpeg(5000), 640, 480, String::new(), thumb()).err(), Some(PhotoError::NotJpeg));
        assert_eq!(cut(b"\x89PNG....", 1, 1, String::new(), thumb()).err(), Some(PhotoError::NotJpeg));
        let chunk = |index: u16, len: usize| {
            let c = PhotoChunkBody { photo: MessageId::from_bytes([1; 32]), index, data: vec![1; len] };
            Body::parse(Kind::PhotoChunk, &Body::PhotoChunk(c).encode())
        };
        assert!(chunk(0, CHUNK_BYTES).is_ok());
        assert!(chunk(MAX_CHUNKS as u16, 10).is_err());
        assert!(chunk(0, CHUNK_BYTES + 1).is_err());
        assert!(chunk(0, 0).is_err());
        // Trailing bytes are malformed, as for every postcard body.
        let mut trailing = Body::Photo(ok).encode();
        trailing.push(0);
        assert_eq!(Body::parse(Kind::Photo, &trailing), Err(BodyError::Malformed(Kind::Photo)));
    }
}
