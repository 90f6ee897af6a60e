//! `careid-agent`: the smartcard agent (`docs/agent.md`). It reads the card through PC/SC,
//! signs careid's challenge with the card's key after the PIN, and signs the person out of
//! everything that sign-in reached when the card leaves the reader.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use careid::agent::client::AgentClient;
use careid::agent::reader;
use careid::agent::run::{self, PinSource};

#[derive(Parser)]
#[command(about = "careid's smartcard agent: card sign-in, and sign-out when the card is removed")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The card readers pcscd knows, and whether a card is in each.
    Readers,
    /// Sign in for the code a careid sign-in page shows, then watch the card until it is removed.
    Login {
        /// careid's issuer URL (the agent talks to no other server).
        #[arg(long, env = "CAREID_AGENT_ISSUER")]
        issuer: Option<String>,
        /// The code the sign-in page shows (XXXX-XXXX).
        #[arg(long)]
        code: Option<String>,
        /// The page's launch link instead (careid-agent:sign-in?issuer=...&code=...): its issuer
        /// must be --issuer when that is given.
        #[arg(long)]
        url: Option<String>,
        /// The reader to use (default: the first with a card).
        #[arg(long)]
        reader: Option<String>,
        /// Read the PIN from this file descriptor (one line) instead of prompting. Never pass
        /// a PIN as an argument.
        #[arg(long)]
        pin_fd: Option<i32>,
        /// A PEM file of CA certificates to trust for careid's TLS, besides the system's.
        #[arg(long, env = "CAREID_AGENT_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// A PEM file of intermediate certificates to send with the card's (when careid is not
        /// configured with them).
        #[arg(long)]
        chain: Option<PathBuf>,
    },
}

/// The issuer and code of a sign-in, from --issuer/--code or from a launch link.
fn target(
    issuer: Option<String>,
    code: Option<String>,
    url: Option<String>,
) -> Result<(String, String), String> {
    let Some(link) = url else {
        return match (issuer, code) {
            (Some(i), Some(c)) => Ok((i, c)),
            _ => Err("give --issuer and --code, or --url".into()),
        };
    };
    let parsed = url::Url::parse(&link).map_err(|e| format!("--url: {e}"))?;
    if parsed.scheme() != "careid-agent" {
        return Err("--url must be a careid-agent: link".into());
    }
    let get = |name: &str| {
        parsed
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (Some(link_issuer), Some(code)) = (get("issuer"), get("code")) else {
        return Err("--url lacks issuer or code".into());
    };
    if let Some(configured) = issuer {
        if configured.trim_end_matches('/') != link_issuer.trim_end_matches('/') {
            return Err(format!(
                "the link is for {link_issuer}, and this agent signs in only at {configured}"
            ));
        }
    }
    Ok((link_issuer, code))
}

fn read_chain(path: &PathBuf) -> Result<Vec<Vec<u8>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .map(|c| {
            c.map(|c| c.to_vec())
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Args::parse().command {
        Command::Readers => match reader::context().and_then(|ctx| reader::readers(&ctx)) {
            Ok(readers) => {
                for (name, present) in readers {
                    println!("{name}\t{}", if present { "card" } else { "empty" });
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("careid-agent: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Login {
            issuer,
            code,
            url,
            reader,
            pin_fd,
            ca_file,
            chain,
        } => {
            let outcome = async {
                let (issuer, code) = target(issuer, code, url)?;
                let ca = ca_file
                    .map(|p| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display())))
                    .transpose()?;
                let intermediates = chain
                    .as_ref()
                    .map(read_chain)
                    .transpose()?
                    .unwrap_or_default();
                let client = AgentClient::new(&issuer, ca.as_deref()).map_err(|e| e.to_string())?;
                let pin = pin_fd.map_or(PinSource::Prompt, PinSource::Fd);
                run::login(&client, &code, reader, pin, intermediates)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    serde_json::to_string(&serde_json::json!({ "event": "failed", "error": e }))
                        .map(|line| println!("{line}"))
                        .ok();
                    eprintln!("careid-agent: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
