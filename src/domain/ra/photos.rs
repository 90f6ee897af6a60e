//! The photograph taken at registration (policy 002 sections 5.2 and 6.1): recorded by RA staff
//! who check identities, shown to RA staff of the person's organisation (the TAC likeness check
//! compares the person with it), never released in a token. A JPEG or PNG of at most 48 KiB
//! (cropped to the passport-photo standard; the request body limit is 64 KiB).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authority as op;
use super::{AdminError, Caller};
use crate::domain::provider::Provider;
use crate::model::audit::AuditKind;
use crate::model::identity::Photo;

pub const PHOTO_MAX_BYTES: usize = 48 * 1024;

/// A photograph to record.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPhoto {
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    /// The image, base64 (standard alphabet).
    pub image_base64: String,
}

/// A recorded photograph, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhotoView {
    pub uuid: String,
    pub content_type: String,
    pub image_base64: String,
    pub recorded_by: String,
    pub recorded_at: i64,
}

/// The image's own first bytes must say what its content type says.
fn checked_image(content_type: &str, bytes: &[u8]) -> Result<(), AdminError> {
    let magic: &[u8] = match content_type {
        "image/jpeg" => &[0xFF, 0xD8, 0xFF],
        "image/png" => &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
        _ => {
            return Err(AdminError::Invalid(
                "content_type must be image/jpeg or image/png".into(),
            ))
        }
    };
    if !bytes.starts_with(magic) {
        return Err(AdminError::Invalid(format!(
            "the photograph is not a {content_type} image"
        )));
    }
    if bytes.len() > PHOTO_MAX_BYTES {
        return Err(AdminError::Invalid(format!(
            "the photograph must be at most {} KiB (crop it to the passport standard)",
            PHOTO_MAX_BYTES / 1024
        )));
    }
    Ok(())
}

impl Provider {
    /// Records (or replaces) a person's photograph.
    pub async fn admin_record_photo(
        &self,
        caller: &Caller,
        uuid: &str,
        photo: NewPhoto,
    ) -> Result<PhotoView, AdminError> {
        self.act_on_person(caller, &op::RECORD_PHOTO, uuid).await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(photo.image_base64.trim())
            .map_err(|_| AdminError::Invalid("image_base64 is not base64".into()))?;
        checked_image(&photo.content_type, &bytes)?;
        let recorded = Photo {
            content_type: photo.content_type,
            bytes,
            recorded_by: caller.uuid.clone(),
            recorded_at: self.now(),
        };
        self.db.set_photo(uuid, &recorded).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminPhotoRecorded,
            json!({ "uuid": uuid, "content_type": recorded.content_type, "bytes": recorded.bytes.len() }),
        )
        .await?;
        Ok(view(uuid, recorded))
    }

    /// A person's photograph (404 when none is recorded).
    pub async fn admin_photo(&self, caller: &Caller, uuid: &str) -> Result<PhotoView, AdminError> {
        Ok(view(uuid, self.photo_of(caller, uuid).await?))
    }

    /// The photograph itself, for the console's image.
    pub async fn photo_of(&self, caller: &Caller, uuid: &str) -> Result<Photo, AdminError> {
        self.read_person(caller, &op::SHOW_PHOTO, uuid).await?;
        self.db
            .photo(uuid)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no photograph recorded for {uuid}")))
    }
}

fn view(uuid: &str, p: Photo) -> PhotoView {
    PhotoView {
        uuid: uuid.to_string(),
        image_base64: base64::engine::general_purpose::STANDARD.encode(&p.bytes),
        content_type: p.content_type,
        recorded_by: p.recorded_by,
        recorded_at: p.recorded_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jpeg_and_png_of_their_declared_type_and_size_are_kept() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0];
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0];
        assert!(checked_image("image/jpeg", &jpeg).is_ok());
        assert!(checked_image("image/png", &png).is_ok());
        assert!(
            checked_image("image/png", &jpeg).is_err(),
            "the bytes decide, not the label"
        );
        assert!(
            checked_image("image/svg+xml", b"<svg>").is_err(),
            "no scriptable formats"
        );
        let mut big = jpeg.to_vec();
        big.resize(PHOTO_MAX_BYTES + 1, 0);
        assert!(checked_image("image/jpeg", &big).is_err());
    }
}
