//! The attestation and assurance policy: which authenticators reach AAL3.
//!
//! AAL3 needs all of: an attestation that chains to a configured trust anchor (a PEM root from
//! `webauthn.aal3_attestation_roots`, or a root a verified FIDO metadata BLOB lists for that
//! AAGUID), an AAGUID the configuration allows (when `webauthn.aal3_aaguids` is set) and that
//! has no compromise or revocation report, and a credential that is not backup-eligible (a
//! synced passkey's key leaves the device). Everything else that verifies is AAL2. User
//! verification is required of every WebAuthn ceremony, so nothing here is below AAL2.

use std::collections::BTreeSet;
use std::path::Path;

use uuid::Uuid;
use webauthn_rs_core::attestation::verify_attestation_ca_chain;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationCaListBuilder, AttestationMetadata, Credential,
};

pub use super::metadata::PolicyError;
use crate::config::WebauthnConfig;

/// What the policy decided about a newly registered credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub aal: u8,
    pub attestation_trusted: bool,
    pub aaguid: Uuid,
    pub format: String,
}

/// Trust anchors and AAGUID rules, loaded once at start.
#[derive(Default)]
pub struct AttestationPolicy {
    /// Roots whose own AAGUID set is `{nil}` trust any model; others only the listed AAGUIDs.
    roots: Option<AttestationCaList>,
    allowed_aaguids: BTreeSet<Uuid>,
    /// Models with a compromise or revocation report in the metadata BLOB.
    distrusted_aaguids: BTreeSet<Uuid>,
}

impl AttestationPolicy {
    /// Reads the configured roots, AAGUID allow-list and metadata BLOB; any error names the key.
    pub fn load(config: &WebauthnConfig, now: i64) -> Result<AttestationPolicy, PolicyError> {
        let mut builder = AttestationCaListBuilder::new();
        let mut any = false;
        for path in &config.aal3_attestation_roots {
            any |= add_pem_roots(&mut builder, path)?;
        }
        let allowed_aaguids = config
            .aal3_aaguids
            .iter()
            .map(|s| Uuid::parse_str(s).map_err(|_| PolicyError::Aaguid(s.clone())))
            .collect::<Result<_, _>>()?;
        let mut distrusted_aaguids = BTreeSet::new();
        if let Some(blob) = &config.metadata_blob {
            let root = config.metadata_blob_root.as_deref().ok_or_else(|| {
                PolicyError::Metadata("webauthn.metadata_blob_root is required with it".into())
            })?;
            let entries = super::metadata::read_blob(blob, root, now)?;
            for entry in entries {
                if entry.distrusted {
                    distrusted_aaguids.insert(entry.aaguid);
                    continue;
                }
                for der in &entry.attestation_roots {
                    builder
                        .insert_device_der(
                            der,
                            entry.aaguid,
                            entry.description.clone(),
                            Default::default(),
                        )
                        .map_err(|e| PolicyError::Metadata(format!("{}: {e}", entry.aaguid)))?;
                    any = true;
                }
            }
        }
        Ok(AttestationPolicy {
            roots: any.then(|| builder.build()),
            allowed_aaguids,
            distrusted_aaguids,
        })
    }

    /// How many trust anchors are loaded (for the start-up log).
    pub fn anchor_count(&self) -> usize {
        self.roots.as_ref().map_or(0, AttestationCaList::len)
    }

    pub fn assess(&self, credential: &Credential) -> Assessment {
        let aaguid = aaguid_of(&credential.attestation.metadata);
        let format = serde_json::to_value(&credential.attestation_format)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| "unknown".into());
        let trusted = self.chain_trusted(credential, aaguid)
            && (self.allowed_aaguids.is_empty() || self.allowed_aaguids.contains(&aaguid))
            && !self.distrusted_aaguids.contains(&aaguid);
        let aal = if trusted && credential.user_verified && !credential.backup_eligible {
            3
        } else {
            2
        };
        Assessment {
            aal,
            attestation_trusted: trusted,
            aaguid,
            format,
        }
    }

    fn chain_trusted(&self, credential: &Credential, aaguid: Uuid) -> bool {
        let Some(roots) = &self.roots else {
            return false;
        };
        match verify_attestation_ca_chain(&credential.attestation.data, roots, false) {
            Ok(Some(ca)) => {
                let models = ca.aaguids();
                models.contains_key(&Uuid::nil()) || models.contains_key(&aaguid)
            }
            _ => false,
        }
    }
}

/// The authenticator model, when the attestation format carries it.
fn aaguid_of(metadata: &AttestationMetadata) -> Uuid {
    match metadata {
        AttestationMetadata::Packed { aaguid } | AttestationMetadata::Tpm { aaguid, .. } => *aaguid,
        _ => Uuid::nil(),
    }
}

fn add_pem_roots(builder: &mut AttestationCaListBuilder, path: &Path) -> Result<bool, PolicyError> {
    let pem = std::fs::read(path).map_err(|e| PolicyError::Root {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    add_pem_bytes(builder, &pem, &path.display().to_string())
}

/// Each certificate in the PEM trusts any model (recorded under the nil AAGUID).
fn add_pem_bytes(
    builder: &mut AttestationCaListBuilder,
    pem: &[u8],
    path: &str,
) -> Result<bool, PolicyError> {
    let mut added = false;
    for der in rustls_pemfile::certs(&mut &pem[..]) {
        let der = der.map_err(|e| PolicyError::Root {
            path: path.into(),
            reason: e.to_string(),
        })?;
        builder
            .insert_device_der(&der, Uuid::nil(), "any model".into(), Default::default())
            .map_err(|e| PolicyError::Root {
                path: path.into(),
                reason: e.to_string(),
            })?;
        added = true;
    }
    if !added {
        return Err(PolicyError::Root {
            path: path.into(),
            reason: "holds no PEM certificate".into(),
        });
    }
    Ok(added)
}
