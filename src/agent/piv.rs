//! The PIV commands the agent sends (NIST SP 800-73-4): select the PIV application, read the
//! authentication certificate (slot 9A), verify the PIN, and sign with the slot's key (GENERAL
//! AUTHENTICATE). Responses longer than one APDU come back in `61XX` pieces and are collected
//! with GET RESPONSE; command data longer than 255 bytes (an RSA-2048 block) goes as a chain.

use sha2::{Digest, Sha256};

use super::apdu::{ins, sw, ApduError, Command, Response, Tlv};

/// The PIV application identifier (without version bytes: a prefix match selects it).
pub const PIV_AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
/// The data object of the PIV authentication certificate (slot 9A).
pub const AUTH_CERT_OBJECT: u32 = 0x5FC105;
/// The key reference of the PIV authentication key.
pub const AUTH_KEY: u8 = 0x9A;
/// The PIN's key reference (the PIV application PIN).
pub const PIN_REF: u8 = 0x80;

/// Algorithm identifiers of GENERAL AUTHENTICATE.
pub mod alg {
    pub const RSA_2048: u8 = 0x07;
    pub const ECC_P256: u8 = 0x11;
}

/// Sends one APDU to a card and returns its answer: PC/SC in the agent, the virtual card itself
/// in tests.
pub trait Transport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, PivError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PivError {
    #[error("the card reader failed: {0}")]
    Reader(String),
    #[error("the card's answer is malformed: {0}")]
    Malformed(#[from] ApduError),
    #[error("this card has no PIV application")]
    NotPiv,
    #[error("the card holds no authentication certificate")]
    NoCertificate,
    #[error("wrong PIN: {0} tries left before the card locks")]
    WrongPin(u8),
    #[error("the card is locked (too many wrong PINs); take it to your Registration Authority")]
    PinBlocked,
    #[error("a PIN has 6 to 8 digits")]
    PinFormat,
    #[error("the card refused the command: status {0:04X}")]
    Status(u16),
    #[error("the card's key is neither RSA-2048 nor ECC P-256")]
    UnsupportedKey,
}

/// Sends `cmd` (chained if long) and gathers a response that comes in `61XX` pieces.
pub fn exchange(t: &mut dyn Transport, cmd: &Command) -> Result<Response, PivError> {
    let mut response = Response::status(sw::OK);
    for part in cmd.encode() {
        response = Response::decode(&t.transmit(&part)?)?;
        if !response.is_ok() && response.more_available().is_none() {
            return Ok(response);
        }
    }
    let mut data = std::mem::take(&mut response.data);
    while let Some(n) = response.more_available() {
        let mut get = Command::new(ins::GET_RESPONSE, 0, 0, vec![]);
        get.le = true;
        let mut bytes = get.encode().remove(0);
        *bytes.last_mut().expect("Le") = n;
        response = Response::decode(&t.transmit(&bytes)?)?;
        data.append(&mut response.data);
    }
    response.data = data;
    Ok(response)
}

fn expect_ok(r: Response) -> Result<Vec<u8>, PivError> {
    if r.is_ok() {
        Ok(r.data)
    } else {
        Err(PivError::Status(r.sw))
    }
}

pub fn select(t: &mut dyn Transport) -> Result<(), PivError> {
    let r = exchange(t, &Command::new(ins::SELECT, 0x04, 0x00, PIV_AID.to_vec()))?;
    match r.sw {
        sw::OK => Ok(()),
        sw::FILE_NOT_FOUND => Err(PivError::NotPiv),
        other => Err(PivError::Status(other)),
    }
}

/// The DER certificate in slot 9A.
pub fn read_auth_certificate(t: &mut dyn Transport) -> Result<Vec<u8>, PivError> {
    let tag = Tlv::new(0x5C, vec![0x5F, 0xC1, 0x05]).encode();
    let r = exchange(t, &Command::new(ins::GET_DATA, 0x3F, 0xFF, tag))?;
    if r.sw == sw::FILE_NOT_FOUND {
        return Err(PivError::NoCertificate);
    }
    let outer = Tlv::parse_all(&expect_ok(r)?)?;
    let inner = Tlv::parse_all(Tlv::find(&outer, 0x53).ok_or(PivError::NoCertificate)?)?;
    // 71: CertInfo. A compressed certificate (bit 0) is not something careid issues.
    if Tlv::find(&inner, 0x71).is_some_and(|info| info.first().is_some_and(|b| b & 1 == 1)) {
        return Err(PivError::Status(sw::WRONG_DATA));
    }
    Ok(Tlv::find(&inner, 0x70)
        .ok_or(PivError::NoCertificate)?
        .to_vec())
}

/// The PIN as VERIFY sends it: its digits, padded with FF to 8 bytes.
pub fn padded_pin(pin: &str) -> Result<Vec<u8>, PivError> {
    let pin = pin.trim_end_matches(['\r', '\n']);
    if !(6..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PivError::PinFormat);
    }
    let mut out = pin.as_bytes().to_vec();
    out.resize(8, 0xFF);
    Ok(out)
}

pub fn verify_pin(t: &mut dyn Transport, pin: &str) -> Result<(), PivError> {
    let mut cmd = Command::new(ins::VERIFY, 0x00, PIN_REF, padded_pin(pin)?);
    cmd.le = false;
    pin_status(exchange(t, &cmd)?.sw)
}

/// How many PIN tries the card has left (VERIFY without data), or Ok(None) when the PIN has
/// been verified in this card session already.
pub fn pin_tries_left(t: &mut dyn Transport) -> Result<Option<u8>, PivError> {
    let mut cmd = Command::new(ins::VERIFY, 0x00, PIN_REF, vec![]);
    cmd.le = false;
    match pin_status(exchange(t, &cmd)?.sw) {
        Ok(()) => Ok(None),
        Err(PivError::WrongPin(n)) => Ok(Some(n)),
        Err(e) => Err(e),
    }
}

fn pin_status(status: u16) -> Result<(), PivError> {
    match status {
        sw::OK => Ok(()),
        s if s & 0xFFF0 == sw::WRONG_PIN => Err(PivError::WrongPin((s & 0x0F) as u8)),
        sw::PIN_BLOCKED => Err(PivError::PinBlocked),
        other => Err(PivError::Status(other)),
    }
}

/// The key algorithm of a certificate, as GENERAL AUTHENTICATE names it.
pub fn key_algorithm(cert_der: &[u8]) -> Result<u8, PivError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|_| PivError::NoCertificate)?;
    match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::EC(p)) if p.key_size() == 256 => Ok(alg::ECC_P256),
        Ok(x509_parser::public_key::PublicKey::RSA(k)) if k.key_size() == 2048 => Ok(alg::RSA_2048),
        _ => Err(PivError::UnsupportedKey),
    }
}

/// What the card is asked to sign for `message` under SHA-256: the digest itself for ECDSA;
/// for RSA (the card does raw RSA) the EMSA-PKCS1-v1_5 block of RFC 8017 §9.2.
pub fn signing_input(algorithm: u8, message: &[u8]) -> Result<Vec<u8>, PivError> {
    let digest = Sha256::digest(message);
    match algorithm {
        alg::ECC_P256 => Ok(digest.to_vec()),
        alg::RSA_2048 => {
            const SHA256_DIGEST_INFO: [u8; 19] = [
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ];
            let t_len = SHA256_DIGEST_INFO.len() + digest.len();
            let mut block = vec![0x00, 0x01];
            block.resize(256 - t_len - 1, 0xFF);
            block.push(0x00);
            block.extend_from_slice(&SHA256_DIGEST_INFO);
            block.extend_from_slice(&digest);
            Ok(block)
        }
        _ => Err(PivError::UnsupportedKey),
    }
}

/// Signs `message` with the authentication key (the PIN must have been verified): an ASN.1
/// ECDSA signature, or an RSA PKCS#1 v1.5 signature, over its SHA-256.
pub fn sign(t: &mut dyn Transport, algorithm: u8, message: &[u8]) -> Result<Vec<u8>, PivError> {
    let input = signing_input(algorithm, message)?;
    let template = [
        Tlv::new(0x82, vec![]).encode(),
        Tlv::new(0x81, input).encode(),
    ]
    .concat();
    let data = Tlv::new(0x7C, template).encode();
    let r = exchange(
        t,
        &Command::new(ins::GENERAL_AUTHENTICATE, algorithm, AUTH_KEY, data),
    )?;
    if r.sw == sw::SECURITY_STATUS_NOT_SATISFIED {
        return Err(PivError::Status(r.sw));
    }
    let outer = Tlv::parse_all(&expect_ok(r)?)?;
    let inner = Tlv::parse_all(Tlv::find(&outer, 0x7C).ok_or(PivError::Status(sw::WRONG_DATA))?)?;
    Ok(Tlv::find(&inner, 0x82)
        .ok_or(PivError::Status(sw::WRONG_DATA))?
        .to_vec())
}
