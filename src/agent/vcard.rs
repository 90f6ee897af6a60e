//! A virtual PIV card for tests and demos: it holds a certificate and its private key (from
//! files), a PIN with a retry counter, and answers the PIV commands the agent sends. Connected to
//! `vpcd` (Debian's `vsmartcard-vpcd`, a reader driver of `pcscd`), it is a card in a reader
//! for every PC/SC program: connecting inserts it, disconnecting removes it.
//!
//! The vpcd protocol (TCP, 127.0.0.1:35963 for the first reader): each message is a 2-byte
//! big-endian length and a payload. A 1-byte payload is a control message (0 power off, 1 power
//! on, 2 reset, 4 send the ATR, which is the only one answered); anything else is an APDU,
//! answered with a response APDU.

use openssl::pkey::{PKey, Private};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::apdu::{ins, sw, Command, Response, Tlv};
use super::piv::{self, alg, PivError, Transport};

/// `3B 80 80 01 01`: T=0 and T=1, no historical bytes, with its check byte.
pub const ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];
/// vpcd's port for the first virtual reader.
pub const VPCD_PORT: u16 = 0x8C7B;
/// Tries a PIN gets before the card locks.
pub const PIN_TRIES: u8 = 3;

/// The card's state: what it holds, and what this power-on session has done.
pub struct VirtualPiv {
    certificate: Vec<u8>,
    key: PKey<Private>,
    algorithm: u8,
    pin: Vec<u8>,
    tries_left: u8,
    selected: bool,
    pin_verified: bool,
    /// Response bytes waiting for GET RESPONSE.
    pending: Vec<u8>,
    /// Command data gathered from a chain so far.
    chained: Vec<u8>,
}

impl VirtualPiv {
    /// A card holding `certificate` (DER) and its private key (PEM), with PIN `pin`.
    pub fn new(certificate: Vec<u8>, key_pem: &[u8], pin: &str) -> Result<VirtualPiv, PivError> {
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| PivError::Reader(format!("the card's key: {e}")))?;
        let algorithm = piv::key_algorithm(&certificate)?;
        Ok(VirtualPiv {
            certificate,
            key,
            algorithm,
            pin: piv::padded_pin(pin)?,
            tries_left: PIN_TRIES,
            selected: false,
            pin_verified: false,
            pending: vec![],
            chained: vec![],
        })
    }

    /// PIN tries left (the counter survives power cycles, like a real card's).
    pub fn tries_left(&self) -> u8 {
        self.tries_left
    }

    /// Power off or reset: the PIN must be given again, the application selected again.
    pub fn reset(&mut self) {
        self.selected = false;
        self.pin_verified = false;
        self.pending.clear();
        self.chained.clear();
    }

    /// Answers one APDU.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = match Command::decode(apdu) {
            Ok((cmd, chained)) => self.command(cmd, chained),
            Err(_) => Response::status(sw::WRONG_LENGTH),
        };
        self.send(response)
    }

    /// Sends at most 256 bytes of a response; the rest waits for GET RESPONSE (`61XX`).
    fn send(&mut self, r: Response) -> Vec<u8> {
        if !r.is_ok() || r.data.len() <= 256 {
            return r.encode();
        }
        let rest = r.data[256..].to_vec();
        let first = r.data[..256].to_vec();
        self.queue(first, rest)
    }

    fn queue(&mut self, now: Vec<u8>, rest: Vec<u8>) -> Vec<u8> {
        let waiting = rest.len().min(256) as u8; // 0 means "256 or more"
        self.pending = rest;
        Response {
            data: now,
            sw: (u16::from(sw::MORE_DATA) << 8) | u16::from(waiting),
        }
        .encode()
    }

    fn command(&mut self, cmd: Command, chained: bool) -> Response {
        if cmd.cla != 0 {
            return Response::status(sw::CLA_NOT_SUPPORTED);
        }
        if cmd.ins != ins::GET_RESPONSE {
            self.pending.clear();
        }
        if chained {
            self.chained.extend_from_slice(&cmd.data);
            return Response::status(sw::OK);
        }
        let mut cmd = cmd;
        if !self.chained.is_empty() {
            let mut data = std::mem::take(&mut self.chained);
            data.extend_from_slice(&cmd.data);
            cmd.data = data;
        }
        match cmd.ins {
            ins::SELECT => self.select(&cmd),
            ins::GET_RESPONSE => Response::ok(std::mem::take(&mut self.pending)),
            _ if !self.selected => Response::status(sw::INS_NOT_SUPPORTED),
            ins::GET_DATA => self.get_data(&cmd),
            ins::VERIFY => self.verify(&cmd),
            ins::GENERAL_AUTHENTICATE => self.authenticate(&cmd),
            _ => Response::status(sw::INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0x04 || !cmd.data.starts_with(&piv::PIV_AID[..]) {
            self.selected = false;
            return Response::status(sw::FILE_NOT_FOUND);
        }
        self.selected = true;
        // Application property template: the AID and the authority (a made-up vendor).
        let template = [
            Tlv::new(0x4F, piv::PIV_AID[5..].to_vec()).encode(),
            Tlv::new(0x79, Tlv::new(0x4F, piv::PIV_AID.to_vec()).encode()).encode(),
        ]
        .concat();
        Response::ok(Tlv::new(0x61, template).encode())
    }

    fn get_data(&self, cmd: &Command) -> Response {
        let wanted = Tlv::parse_all(&cmd.data)
            .ok()
            .and_then(|t| Tlv::find(&t, 0x5C).map(<[u8]>::to_vec));
        if cmd.p1 != 0x3F || cmd.p2 != 0xFF {
            return Response::status(sw::WRONG_P1P2);
        }
        if wanted.as_deref() != Some(&[0x5F, 0xC1, 0x05][..]) {
            return Response::status(sw::FILE_NOT_FOUND);
        }
        let object = [
            Tlv::new(0x70, self.certificate.clone()).encode(),
            Tlv::new(0x71, vec![0x00]).encode(),
            Tlv::new(0xFE, vec![]).encode(),
        ]
        .concat();
        Response::ok(Tlv::new(0x53, object).encode())
    }

    fn verify(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != piv::PIN_REF {
            return Response::status(sw::WRONG_P1P2);
        }
        if self.tries_left == 0 {
            return Response::status(sw::PIN_BLOCKED);
        }
        if cmd.data.is_empty() {
            return if self.pin_verified {
                Response::status(sw::OK)
            } else {
                Response::status(sw::WRONG_PIN | u16::from(self.tries_left))
            };
        }
        if cmd.data.len() != 8 {
            return Response::status(sw::WRONG_LENGTH);
        }
        if openssl::memcmp::eq(&cmd.data, &self.pin) {
            self.tries_left = PIN_TRIES;
            self.pin_verified = true;
            return Response::status(sw::OK);
        }
        self.pin_verified = false;
        self.tries_left -= 1;
        if self.tries_left == 0 {
            Response::status(sw::PIN_BLOCKED)
        } else {
            Response::status(sw::WRONG_PIN | u16::from(self.tries_left))
        }
    }

    fn authenticate(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != piv::AUTH_KEY || cmd.p1 != self.algorithm {
            return Response::status(sw::WRONG_P1P2);
        }
        if !self.pin_verified {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        let Some(input) = Tlv::parse_all(&cmd.data)
            .ok()
            .and_then(|t| Tlv::find(&t, 0x7C).map(<[u8]>::to_vec))
            .and_then(|inner| Tlv::parse_all(&inner).ok())
            .and_then(|inner| Tlv::find(&inner, 0x81).map(<[u8]>::to_vec))
        else {
            return Response::status(sw::WRONG_DATA);
        };
        match self.private_operation(&input) {
            Some(signature) => {
                let inner = Tlv::new(0x82, signature).encode();
                Response::ok(Tlv::new(0x7C, inner).encode())
            }
            None => Response::status(sw::WRONG_DATA),
        }
    }

    /// What the card's chip does: ECDSA over the given digest, or raw RSA over the given block.
    fn private_operation(&self, input: &[u8]) -> Option<Vec<u8>> {
        match self.algorithm {
            alg::ECC_P256 if input.len() == 32 => {
                let ec = self.key.ec_key().ok()?;
                openssl::ecdsa::EcdsaSig::sign(input, &ec)
                    .ok()?
                    .to_der()
                    .ok()
            }
            alg::RSA_2048 if input.len() == 256 => {
                let rsa = self.key.rsa().ok()?;
                let mut out = vec![0; rsa.size() as usize];
                let n = rsa
                    .private_encrypt(input, &mut out, openssl::rsa::Padding::NONE)
                    .ok()?;
                out.truncate(n);
                Some(out)
            }
            _ => None,
        }
    }
}

/// In tests, the agent's commands can go straight to the card.
impl Transport for VirtualPiv {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, PivError> {
        Ok(self.process(apdu))
    }
}

/// Inserts `card` into vpcd's reader at `addr` and serves it until vpcd hangs up or the future
/// is dropped (dropping it closes the connection: the card is removed).
pub async fn serve_vpcd(card: &mut VirtualPiv, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    card.reset();
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return Ok(());
        }
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut payload).await?;
        let answer = match payload.as_slice() {
            [0] | [2] => {
                card.reset();
                continue;
            }
            [1] => continue,
            [4] => ATR.to_vec(),
            [_] => continue,
            apdu => card.process(apdu),
        };
        let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        stream.write_all(&framed).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::piv::{read_auth_certificate, select, sign, verify_pin};

    fn p256_card(pin: &str) -> (VirtualPiv, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["card".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        let card = VirtualPiv::new(der.clone(), key.serialize_pem().as_bytes(), pin).unwrap();
        (card, der)
    }

    fn rsa_card(pin: &str) -> (VirtualPiv, Vec<u8>) {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let der = b.build().to_der().unwrap();
        let pem = key.private_key_to_pem_pkcs8().unwrap();
        (VirtualPiv::new(der.clone(), &pem, pin).unwrap(), der)
    }

    #[test]
    fn the_agent_reads_the_certificate_in_pieces_and_signs_after_the_pin() {
        for ((mut card, der), pin) in [
            (p256_card("123456"), "123456"),
            (rsa_card("12345678"), "12345678"),
        ] {
            select(&mut card).unwrap();
            assert_eq!(read_auth_certificate(&mut card).unwrap(), der);
            let algorithm = piv::key_algorithm(&der).unwrap();
            // No signature before the PIN.
            assert_eq!(
                sign(&mut card, algorithm, b"challenge"),
                Err(PivError::Status(sw::SECURITY_STATUS_NOT_SATISFIED))
            );
            verify_pin(&mut card, pin).unwrap();
            let signature = sign(&mut card, algorithm, b"challenge").unwrap();
            // The signature verifies with the certificate's key, as the server will check it.
            let cert = openssl::x509::X509::from_der(&der).unwrap();
            let public = cert.public_key().unwrap();
            let mut v =
                openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public)
                    .unwrap();
            v.update(b"challenge").unwrap();
            assert!(v.verify(&signature).unwrap(), "algorithm {algorithm:#x}");
        }
    }

    #[test]
    fn wrong_pins_count_down_and_lock_the_card() {
        let (mut card, _) = p256_card("123456");
        select(&mut card).unwrap();
        assert_eq!(piv::pin_tries_left(&mut card), Ok(Some(3)));
        assert_eq!(verify_pin(&mut card, "000000"), Err(PivError::WrongPin(2)));
        assert_eq!(card.tries_left(), 2);
        // The right PIN resets the counter.
        verify_pin(&mut card, "123456").unwrap();
        assert_eq!(card.tries_left(), PIN_TRIES);
        assert_eq!(piv::pin_tries_left(&mut card), Ok(None));
        assert_eq!(verify_pin(&mut card, "000000"), Err(PivError::WrongPin(2)));
        assert_eq!(verify_pin(&mut card, "000001"), Err(PivError::WrongPin(1)));
        assert_eq!(verify_pin(&mut card, "000002"), Err(PivError::PinBlocked));
        // Locked: even the right PIN is refused now, and nothing is signed.
        assert_eq!(verify_pin(&mut card, "123456"), Err(PivError::PinBlocked));
        assert!(sign(&mut card, alg::ECC_P256, b"x").is_err());
        // A reset does not give the tries back.
        card.reset();
        select(&mut card).unwrap();
        assert_eq!(verify_pin(&mut card, "123456"), Err(PivError::PinBlocked));
    }

    #[test]
    fn a_reset_forgets_the_pin() {
        let (mut card, _) = p256_card("123456");
        select(&mut card).unwrap();
        verify_pin(&mut card, "123456").unwrap();
        card.reset();
        select(&mut card).unwrap();
        assert_eq!(
            sign(&mut card, alg::ECC_P256, b"x"),
            Err(PivError::Status(sw::SECURITY_STATUS_NOT_SATISFIED))
        );
    }

    #[test]
    fn pins_must_be_six_to_eight_digits_and_other_commands_are_refused() {
        assert_eq!(piv::padded_pin("12345"), Err(PivError::PinFormat));
        assert_eq!(piv::padded_pin("12345a"), Err(PivError::PinFormat));
        assert_eq!(
            piv::padded_pin("123456\n").unwrap(),
            vec![b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF]
        );
        let (mut card, _) = p256_card("123456");
        // Nothing but SELECT before the application is selected.
        assert_eq!(
            Response::decode(&card.process(&[0, ins::GET_DATA, 0x3F, 0xFF, 0]))
                .unwrap()
                .sw,
            sw::INS_NOT_SUPPORTED
        );
        // Another application is not there.
        let other = Command::new(ins::SELECT, 4, 0, vec![0xA0, 0, 0, 0, 0x62]);
        assert_eq!(select_with(&mut card, other), sw::FILE_NOT_FOUND);
        assert_eq!(
            Response::decode(&card.process(&[0x80, 0xCA, 0, 0, 0]))
                .unwrap()
                .sw,
            sw::CLA_NOT_SUPPORTED
        );
        assert_eq!(
            Response::decode(&card.process(&[0, 0xA4])).unwrap().sw,
            sw::WRONG_LENGTH
        );
    }

    fn select_with(card: &mut VirtualPiv, cmd: Command) -> u16 {
        Response::decode(&card.process(&cmd.encode()[0]))
            .unwrap()
            .sw
    }
}
