//! Terms and conditions: every user accepts the current version once, before careid issues any
//! token for them (nhs-processes: users accept the Care Identity terms; careid records the
//! version and time). Changing `terms.version` asks everyone again.

use crate::config::TermsConfig;

/// careid's built-in text: a summary of the obligations in the NHS Care Identity terms.
const BUILT_IN: &str = "Your Care Identity is for your use only. Do not share your smartcard, security key, passcode or sign-in with anyone, and do not leave your card in a reader unattended.

Access patient and staff information only when you have a legitimate relationship with the person and need it for your role. Every access is recorded and audited.

Report a lost, stolen or damaged card, or any suspected misuse of your identity, to your Registration Authority at once.

Keep your personal details up to date with your Registration Authority. Breaking these terms may lead to your access being removed and to disciplinary action.";

/// The terms as shown: version and paragraphs.
pub struct Terms {
    pub version: String,
    pub paragraphs: Vec<String>,
}

/// Reads the configured terms (the file, or the built-in text).
pub fn current(config: &TermsConfig) -> Terms {
    let text = config.file.as_ref().and_then(|f| std::fs::read_to_string(f).map_err(|e| tracing::error!(error = %e, file = %f.display(), "cannot read the terms file")).ok()).unwrap_or_else(|| BUILT_IN.to_string());
    let paragraphs = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    Terms {
        version: config.version.clone(),
        paragraphs,
    }
}
