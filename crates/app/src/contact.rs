//! Contact codes: `festival:<64 hex digits of the PeerId>`, shown as text and
//! as a QR code, compared in person to verify someone. The code carries the
//! whole public key, so a verified peer is a key, not a name.

use festival_core::PeerId;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::Serialize;

use crate::error::{AppError, ErrorCode};

/// The scheme in front of the key.
pub const CODE_PREFIX: &str = "festival:";

/// Your own code, ready to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct MyCode {
    pub peer: PeerId,
    /// `festival:<hex>`: what the QR code holds and what can be pasted.
    pub code: String,
    /// The short form people read aloud: `ABCD-EF01-2345-6789`.
    pub fingerprint: String,
    pub name: String,
    /// The code as a QR code, a standalone SVG document (dark on white).
    pub qr_svg: String,
}

pub fn contact_code(peer: &PeerId) -> String {
    format!("{CODE_PREFIX}{}", peer.to_hex())
}

/// Read a code as a person pastes it: with or without the prefix, any case,
/// surrounding spaces ignored.
pub fn parse_contact_code(code: &str) -> Result<PeerId, AppError> {
    let s = code.trim();
    let hex = match s.get(..CODE_PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(CODE_PREFIX) => &s[CODE_PREFIX.len()..],
        _ => s,
    };
    let invalid = || {
        AppError::new(
            ErrorCode::InvalidCode,
            "That is not a Festival Chat code. It starts with \"festival:\" followed by 64 letters and digits.",
        )
    };
    let peer = hex.trim().to_ascii_lowercase().parse::<PeerId>().map_err(|_| invalid())?;
    // 64 hex digits that are no public key: a typo that kept the length.
    if !festival_core::identity::is_valid_key(&peer) {
        return Err(invalid());
    }
    Ok(peer)
}

pub fn my_code(peer: &PeerId, name: &str) -> Result<MyCode, AppError> {
    let code = contact_code(peer);
    // Medium error correction: survives a scratched or glary phone screen.
    let qr = QrCode::with_error_correction_level(code.as_bytes(), EcLevel::M)
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("QR code: {e}")))?;
    let qr_svg = qr
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .dark_color(svg::Color("#111111"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    Ok(MyCode { peer: *peer, code, fingerprint: peer.fingerprint(), name: name.to_owned(), qr_svg })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real Ed25519 public key (RFC 8032, test 1).
    const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    #[test]
    fn codes_round_trip_with_or_without_prefix_and_in_any_case() {
        let peer: PeerId = KEY.parse().unwrap();
        let code = contact_code(&peer);
        assert!(code.starts_with("festival:d75a98"));
        assert_eq!(parse_contact_code(&code).unwrap(), peer);
        assert_eq!(parse_contact_code(&format!("  {}  ", code.to_uppercase())).unwrap(), peer);
        assert_eq!(parse_contact_code(&peer.to_hex()).unwrap(), peer);
    }

    #[test]
    fn garbage_is_an_invalid_code_error() {
        // The last: 64 hex digits that are not a point on the curve.
        let not_a_key = "festival:".to_owned() + &"ab".repeat(32);
        for bad in [
            "",
            "festival:",
            "festival:xyz",
            "hello",
            &"a".repeat(63),
            &format!("festival:{}", "g".repeat(64)),
            &not_a_key,
        ] {
            assert_eq!(parse_contact_code(bad).unwrap_err().code, ErrorCode::InvalidCode, "{bad:?}");
        }
    }

    #[test]
    fn my_code_has_an_svg_qr_code() {
        let c = my_code(&KEY.parse().unwrap(), "Ana").unwrap();
        assert!(c.qr_svg.contains("<svg") && c.qr_svg.contains("</svg>"));
        assert_eq!(c.fingerprint.len(), 19);
        assert_eq!(parse_contact_code(&c.code).unwrap(), c.peer);
    }

    /// The UI's sanitiser is tested on this key's QR code as a file
    /// (ui/src/logic/fixtures/qr-code.svg): it must stay what we emit.
    /// `FESTIVAL_WRITE_BINDINGS=1 cargo test -p festival-app --lib qr_fixture`
    /// rewrites it.
    #[test]
    fn the_uis_qr_fixture_is_what_we_emit() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/logic/fixtures/qr-code.svg");
        let svg = my_code(&KEY.parse().unwrap(), "Ana").unwrap().qr_svg;
        if std::env::var_os("FESTIVAL_WRITE_BINDINGS").is_some() {
            std::fs::write(&path, &svg).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), svg, "the QR renderer changed: rewrite the fixture");
    }
}
