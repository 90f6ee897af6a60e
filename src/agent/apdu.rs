//! ISO 7816-4 APDUs and BER-TLV, as PIV cards speak them: command APDUs (short, or split by
//! command chaining when the data exceeds 255 bytes), response APDUs with their status word,
//! and the tag-length-value objects PIV wraps its data in.

/// Status words the agent and the virtual card use.
pub mod sw {
    pub const OK: u16 = 0x9000;
    /// `61XX`: XX more bytes are waiting (ask with GET RESPONSE).
    pub const MORE_DATA: u8 = 0x61;
    /// `63CX`: wrong PIN, X tries left.
    pub const WRONG_PIN: u16 = 0x63C0;
    pub const SECURITY_STATUS_NOT_SATISFIED: u16 = 0x6982;
    pub const PIN_BLOCKED: u16 = 0x6983;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
}

/// Instruction bytes.
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const VERIFY: u8 = 0x20;
    pub const GET_DATA: u8 = 0xCB;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GET_RESPONSE: u8 = 0xC0;
}

/// The chaining bit of CLA: more command data follows in the next APDU.
const CLA_CHAIN: u8 = 0x10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error("an APDU needs at least 4 bytes, got {0}")]
    TooShort(usize),
    #[error("the APDU's length byte says {said} bytes of data, it carries {has}")]
    LengthMismatch { said: usize, has: usize },
    #[error("a response needs its 2-byte status word")]
    NoStatusWord,
    #[error("malformed TLV at byte {0}")]
    Tlv(usize),
}

/// A command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Whether a response is expected (Le = 00, "up to 256").
    pub le: bool,
}

impl Command {
    pub fn new(ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Command {
        Command {
            cla: 0,
            ins,
            p1,
            p2,
            data,
            le: true,
        }
    }

    /// The short APDUs to send, in order: one, or a chain when the data is longer than 255
    /// bytes (every part but the last carries the chaining bit and no Le).
    pub fn encode(&self) -> Vec<Vec<u8>> {
        if self.data.len() <= 255 {
            return vec![self.short(self.cla, &self.data, self.le)];
        }
        let parts: Vec<&[u8]> = self.data.chunks(255).collect();
        let last = parts.len() - 1;
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let (cla, le) = if i < last {
                    (self.cla | CLA_CHAIN, false)
                } else {
                    (self.cla, self.le)
                };
                self.short(cla, part, le)
            })
            .collect()
    }

    fn short(&self, cla: u8, data: &[u8], le: bool) -> Vec<u8> {
        let mut out = vec![cla, self.ins, self.p1, self.p2];
        if !data.is_empty() {
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        if le {
            out.push(0);
        }
        out
    }

    /// Reads a short command APDU (cases 1 to 4). `chained` tells whether CLA's chaining bit was
    /// set (the bit is cleared in the returned command).
    pub fn decode(bytes: &[u8]) -> Result<(Command, bool), ApduError> {
        let [cla, ins, p1, p2, rest @ ..] = bytes else {
            return Err(ApduError::TooShort(bytes.len()));
        };
        let (data, le) = match rest {
            [] => (&[][..], false),
            [_le] => (&[][..], true),
            [lc, body @ ..] => {
                let lc = usize::from(*lc);
                match body.len() {
                    n if n == lc => (body, false),
                    n if n == lc + 1 => (&body[..lc], true),
                    n => return Err(ApduError::LengthMismatch { said: lc, has: n }),
                }
            }
        };
        Ok((
            Command {
                cla: cla & !CLA_CHAIN,
                ins: *ins,
                p1: *p1,
                p2: *p2,
                data: data.to_vec(),
                le,
            },
            cla & CLA_CHAIN != 0,
        ))
    }
}

/// A response APDU: data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Response {
    pub fn ok(data: Vec<u8>) -> Response {
        Response { data, sw: sw::OK }
    }

    pub fn status(sw: u16) -> Response {
        Response { data: vec![], sw }
    }

    pub fn decode(bytes: &[u8]) -> Result<Response, ApduError> {
        if bytes.len() < 2 {
            return Err(ApduError::NoStatusWord);
        }
        let (data, sw) = bytes.split_at(bytes.len() - 2);
        Ok(Response {
            data: data.to_vec(),
            sw: u16::from_be_bytes([sw[0], sw[1]]),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }

    pub fn is_ok(&self) -> bool {
        self.sw == sw::OK
    }

    /// `61XX`: how many more bytes the card holds (0 means 256 or more).
    pub fn more_available(&self) -> Option<u8> {
        (self.sw >> 8 == u16::from(sw::MORE_DATA)).then_some((self.sw & 0xFF) as u8)
    }
}

/// One BER-TLV object: a tag of one to three bytes and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u32,
    pub value: Vec<u8>,
}

impl Tlv {
    pub fn new(tag: u32, value: Vec<u8>) -> Tlv {
        Tlv { tag, value }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.len() + 6);
        let tag = self.tag.to_be_bytes();
        let first = tag.iter().position(|b| *b != 0).unwrap_or(3);
        out.extend_from_slice(&tag[first..]);
        encode_length(self.value.len(), &mut out);
        out.extend_from_slice(&self.value);
        out
    }

    /// Every object at the top level of `bytes`, in order.
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv>, ApduError> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let (tlv, used) = Tlv::parse_one(&bytes[at..]).map_err(|_| ApduError::Tlv(at))?;
            out.push(tlv);
            at += used;
        }
        Ok(out)
    }

    /// The first object of `bytes` with its encoded size.
    fn parse_one(bytes: &[u8]) -> Result<(Tlv, usize), ()> {
        let mut at = 0;
        let mut tag = u32::from(*bytes.first().ok_or(())?);
        at += 1;
        // A first byte with the low five bits set announces more tag bytes; each with its top
        // bit set announces one more (three bytes at most here).
        if tag & 0x1F == 0x1F {
            loop {
                let b = *bytes.get(at).ok_or(())?;
                tag = (tag << 8) | u32::from(b);
                at += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if at >= 3 {
                    return Err(());
                }
            }
        }
        let first = *bytes.get(at).ok_or(())?;
        at += 1;
        let len = match first {
            n if n < 0x80 => usize::from(n),
            0x81 => {
                at += 1;
                usize::from(*bytes.get(at - 1).ok_or(())?)
            }
            0x82 => {
                at += 2;
                let b = bytes.get(at - 2..at).ok_or(())?;
                usize::from(u16::from_be_bytes([b[0], b[1]]))
            }
            _ => return Err(()),
        };
        let value = bytes.get(at..at + len).ok_or(())?;
        Ok((Tlv::new(tag, value.to_vec()), at + len))
    }

    /// The value of the first object tagged `tag` among `objects`.
    pub fn find(objects: &[Tlv], tag: u32) -> Option<&[u8]> {
        objects
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.value.as_slice())
    }
}

fn encode_length(len: usize, out: &mut Vec<u8>) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_commands_encode_each_case() {
        let select = Command::new(ins::SELECT, 4, 0, vec![0xA0, 0, 0, 3, 8]);
        assert_eq!(
            select.encode(),
            vec![vec![0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8, 0]]
        );
        let mut verify_status = Command::new(ins::VERIFY, 0, 0x80, vec![]);
        verify_status.le = false;
        assert_eq!(verify_status.encode(), vec![vec![0, 0x20, 0, 0x80]]);
        let get_response = Command::new(ins::GET_RESPONSE, 0, 0, vec![]);
        assert_eq!(get_response.encode(), vec![vec![0, 0xC0, 0, 0, 0]]);
    }

    #[test]
    fn long_data_is_sent_as_a_command_chain_and_reassembles() {
        let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let cmd = Command::new(ins::GENERAL_AUTHENTICATE, 0x07, 0x9A, data.clone());
        let parts = cmd.encode();
        assert_eq!(parts.len(), 3);
        let mut joined = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let (c, chained) = Command::decode(part).unwrap();
            assert_eq!(
                chained,
                i < 2,
                "all but the last part carry the chaining bit"
            );
            assert_eq!(c.le, i == 2, "only the last part asks for a response");
            joined.extend(c.data);
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn decoding_refuses_lengths_that_do_not_add_up() {
        assert_eq!(Command::decode(&[0, 0xA4]), Err(ApduError::TooShort(2)));
        assert_eq!(
            Command::decode(&[0, 0xA4, 4, 0, 5, 1, 2]),
            Err(ApduError::LengthMismatch { said: 5, has: 2 })
        );
        let (c, _) = Command::decode(&[0, 0xA4, 4, 0, 2, 1, 2, 0]).unwrap();
        assert_eq!((c.data, c.le), (vec![1, 2], true));
    }

    #[test]
    fn status_words_say_success_more_data_and_retries() {
        let r = Response::decode(&[1, 2, 0x90, 0x00]).unwrap();
        assert!(r.is_ok());
        assert_eq!(r.data, vec![1, 2]);
        let more = Response::decode(&[0x61, 0x10]).unwrap();
        assert_eq!(more.more_available(), Some(0x10));
        assert!(!more.is_ok());
        assert_eq!(Response::decode(&[0x63, 0xC2]).unwrap().sw, 0x63C2);
        assert_eq!(Response::decode(&[0x90]), Err(ApduError::NoStatusWord));
        assert_eq!(Response::status(0x6982).encode(), vec![0x69, 0x82]);
    }

    #[test]
    fn tlv_round_trips_with_multi_byte_tags_and_long_lengths() {
        let long = vec![7u8; 300];
        let objects = vec![
            Tlv::new(0x5C, vec![0x5F, 0xC1, 0x05]),
            Tlv::new(0x5FC105, vec![1, 2, 3]),
            Tlv::new(0x70, long.clone()),
            Tlv::new(0x71, vec![0; 200]),
            Tlv::new(0xFE, vec![]),
        ];
        let bytes: Vec<u8> = objects.iter().flat_map(Tlv::encode).collect();
        assert_eq!(&bytes[..5], &[0x5C, 3, 0x5F, 0xC1, 0x05]);
        assert_eq!(&bytes[5..9], &[0x5F, 0xC1, 0x05, 3]);
        assert_eq!(
            &bytes[12..16],
            &[0x70, 0x82, 0x01, 0x2C],
            "300 bytes: 82 01 2C"
        );
        assert_eq!(Tlv::parse_all(&bytes).unwrap(), objects);
        assert_eq!(Tlv::find(&objects, 0x70), Some(&long[..]));
    }

    #[test]
    fn truncated_tlv_is_an_error_not_a_panic() {
        assert_eq!(Tlv::parse_all(&[0x70, 0x05, 1, 2]), Err(ApduError::Tlv(0)));
        assert_eq!(Tlv::parse_all(&[0x53, 0x82, 0x01]), Err(ApduError::Tlv(0)));
        assert_eq!(Tlv::parse_all(&[0x5F]), Err(ApduError::Tlv(0)));
        assert_eq!(
            Tlv::parse_all(&[0x70, 0x84, 0, 0, 0, 1]),
            Err(ApduError::Tlv(0))
        );
    }
}
