//! A small certificate authority for development, the demo and tests (rcgen): a root, an
//! authentication sub-CA issuing smartcard certificates shaped like NHS ones
//! (`O=…, OU=People, CN=<UUID>_<name>`, `../shared/reference/cis2.md` §13), server certificates
//! and CRLs, and the PKCS#12 files a browser imports. Used by the demo, the tests and onboarding's
//! test identities (integration only). Never used to secure production traffic.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::clock::UnixTime;

/// A CA that can issue certificates and CRLs.
pub struct Authority {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

/// An issued certificate and its private key.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    pub serial: Vec<u8>,
}

/// What a smartcard certificate should look like; defaults make a valid card for `uuid`.
#[derive(Clone)]
pub struct CardSpec {
    pub uuid: String,
    pub name: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    /// Authentication cards sign (digitalSignature); NHS signing cards are non-repudiation only.
    pub signing_only: bool,
    /// A certificate-policy OID the certificate carries (NHS card certificates carry one).
    pub policy_oid: Option<Vec<u64>>,
}

impl CardSpec {
    pub fn valid(uuid: &str, name: &str, now: UnixTime) -> CardSpec {
        CardSpec {
            uuid: uuid.into(),
            name: name.into(),
            not_before: now - 3600,
            not_after: now + 2 * 365 * 86400,
            signing_only: false,
            policy_oid: None,
        }
    }
}

/// A certificatePolicies extension (RFC 5280 §4.2.1.4) naming one policy, no qualifiers:
/// SEQUENCE { SEQUENCE { OBJECT IDENTIFIER } }, with the OID's content encoded by der-parser.
fn certificate_policies(oid: &[u64]) -> Result<rcgen::CustomExtension, rcgen::Error> {
    let content = x509_parser::der_parser::oid::Oid::from(oid)
        .map_err(|_| rcgen::Error::CouldNotParseCertificate)?
        .as_bytes()
        .to_vec();
    let tlv = |tag: u8, body: Vec<u8>| [vec![tag, body.len() as u8], body].concat();
    let der = tlv(0x30, tlv(0x30, tlv(0x06, content)));
    Ok(rcgen::CustomExtension::from_oid_content(
        &[2, 5, 29, 32],
        der,
    ))
}

fn dn(org: &str, unit: &str, cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "GB");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::OrganizationalUnitName, unit);
    dn.push(DnType::CommonName, cn);
    dn
}

fn at(t: UnixTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn random_serial() -> Vec<u8> {
    let mut s = crate::domain::secrets::random_token().into_bytes();
    s.truncate(16);
    s[0] &= 0x7f;
    s[0] |= 0x10;
    s
}

fn ca_params(org: &str, cn: &str, now: UnixTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(org, "CA", cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = at(now - 86400);
    p.not_after = at(now + 10 * 365 * 86400);
    p.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

impl Authority {
    pub fn root(org: &str, cn: &str, now: UnixTime) -> Result<Authority, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = ca_params(org, cn, now).self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    /// A development CA for TLS on this machine only: name-constrained to `localhost`,
    /// `127.0.0.1` and `::1` (a browser that trusts it trusts it for nothing else) and valid for
    /// `days` days. The demo asks people to trust it, so it must not be a ten-year universal CA.
    pub fn local_development_root(
        org: &str,
        cn: &str,
        now: UnixTime,
        days: i64,
    ) -> Result<Authority, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut p = ca_params(org, cn, now);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.not_after = at(now + days * 86400);
        p.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![
                rcgen::GeneralSubtree::DnsName("localhost".into()),
                rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4(
                    [127, 0, 0, 1],
                    [255, 255, 255, 255],
                )),
                rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V6(
                    std::net::Ipv6Addr::LOCALHOST.octets(),
                    [0xff; 16],
                )),
            ],
            excluded_subtrees: vec![],
        });
        let cert = p.self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    /// A server certificate that ends with its CA (`until`), for the short-lived demo CA.
    pub fn server_cert_until(
        &self,
        names: &[&str],
        now: UnixTime,
        until: UnixTime,
    ) -> Result<Issued, rcgen::Error> {
        let mut p =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        for n in names {
            if let Ok(ip) = n.parse() {
                p.subject_alt_names.push(SanType::IpAddress(ip));
            }
        }
        p.distinguished_name = dn(
            "careid",
            "Servers",
            names.first().copied().unwrap_or("localhost"),
        );
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = at(now - 3600);
        p.not_after = at(until);
        self.issue(p)
    }

    /// A CA loaded from its PEM certificate and key (the demo reuses its CA across restarts).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Authority, rcgen::Error> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert = CertificateParams::from_ca_cert_pem(cert_pem)?.self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    pub fn intermediate(
        &self,
        org: &str,
        cn: &str,
        now: UnixTime,
    ) -> Result<Authority, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = ca_params(org, cn, now).signed_by(&key, &self.cert, &self.key)?;
        Ok(Authority { cert, key })
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn server_cert(&self, names: &[&str], now: UnixTime) -> Result<Issued, rcgen::Error> {
        self.server_cert_until(names, now, now + 365 * 86400)
    }

    pub fn card_cert(&self, spec: &CardSpec) -> Result<Issued, rcgen::Error> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "nhs");
        dn.push(DnType::OrganizationalUnitName, "People");
        dn.push(DnType::CommonName, format!("{}_{}", spec.uuid, spec.name));
        p.distinguished_name = dn;
        p.key_usages = if spec.signing_only {
            vec![KeyUsagePurpose::ContentCommitment]
        } else {
            vec![KeyUsagePurpose::DigitalSignature]
        };
        p.extended_key_usages = if spec.signing_only {
            vec![]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        p.not_before = at(spec.not_before);
        p.not_after = at(spec.not_after);
        if let Some(oid) = &spec.policy_oid {
            p.custom_extensions.push(certificate_policies(oid)?);
        }
        self.issue(p)
    }

    fn issue(&self, mut p: CertificateParams) -> Result<Issued, rcgen::Error> {
        let serial = random_serial();
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        // Real end-entity certificates carry these; rcgen also writes no extensions (not even
        // key usage) for a certificate without any of them.
        p.use_authority_key_identifier_extension = true;
        p.is_ca = IsCa::ExplicitNoCa;
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            serial,
        })
    }

    /// A CRL listing `revoked` certificates, valid from `now` for a week.
    pub fn crl(&self, revoked: &[&Issued], now: UnixTime) -> Result<String, rcgen::Error> {
        let params = CertificateRevocationListParams {
            this_update: at(now - 60),
            next_update: at(now + 7 * 86400),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&c.serial),
                    revocation_time: at(now - 60),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.cert, &self.key)?.pem()
    }
}

/// A password-protected PKCS#12 file of a card's certificate, key and issuing CA (for a browser
/// or a card agent's import).
pub fn pkcs12(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    password: &str,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes())?;
    let cert = openssl::x509::X509::from_pem(cert_pem.as_bytes())?;
    let mut chain = openssl::stack::Stack::new()?;
    chain.push(openssl::x509::X509::from_pem(ca_pem.as_bytes())?)?;
    openssl::pkcs12::Pkcs12::builder()
        .name("careid card")
        .pkey(&key)
        .cert(&cert)
        .ca(chain)
        .build2(password)?
        .to_der()
}
