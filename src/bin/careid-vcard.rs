//! `careid-vcard`: a virtual PIV card for tests and demos (`docs/agent.md`). It holds a
//! certificate and key from files and a PIN, and plugs into vpcd (Debian's
//! `vsmartcard-vpcd`), so every PC/SC program sees a card in the reader "Virtual PCD 00 00".
//! Type `remove` or `insert` (and Enter) to take the card out of the reader and put it back.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tokio::io::AsyncBufReadExt;

use careid::agent::vcard::{serve_vpcd, VirtualPiv, VPCD_PORT};

#[derive(Parser)]
#[command(about = "A virtual PIV smartcard for vpcd (tests and demos only)")]
struct Args {
    /// The card's authentication certificate (PEM or DER).
    #[arg(long)]
    cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The card's PIN (a test card's: 6 to 8 digits).
    #[arg(long, default_value = "123456")]
    pin: String,
    /// vpcd's address (the first virtual reader listens on 35963).
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], VPCD_PORT)))]
    vpcd: SocketAddr,
}

fn read_certificate(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    if bytes.starts_with(b"-----BEGIN") {
        let der = rustls_pemfile::certs(&mut bytes.as_slice())
            .next()
            .ok_or_else(|| anyhow::anyhow!("{} holds no certificate", path.display()))??;
        return Ok(der.to_vec());
    }
    Ok(bytes)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let certificate = read_certificate(&args.cert)?;
    let key = std::fs::read(&args.key)?;
    let mut card = VirtualPiv::new(certificate, &key, &args.pin)?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut inserted = true;
    let mut stdin_open = true;
    loop {
        if !inserted {
            match lines.next_line().await? {
                Some(l) if l.trim() == "insert" => inserted = true,
                Some(_) => continue,
                None => return Ok(()),
            }
            eprintln!("careid-vcard: inserted");
        }
        tokio::select! {
            served = serve_vpcd(&mut card, args.vpcd) => {
                served.map_err(|e| anyhow::anyhow!("vpcd at {}: {e} (is pcscd running with vsmartcard-vpcd?)", args.vpcd))?;
                eprintln!("careid-vcard: vpcd closed the connection");
                return Ok(());
            }
            line = lines.next_line(), if stdin_open => match line? {
                Some(l) if l.trim() == "remove" => {
                    inserted = false;
                    eprintln!("careid-vcard: removed");
                }
                Some(_) => {}
                None => stdin_open = false,
            },
        }
    }
}
