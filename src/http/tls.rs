//! HTTPS for `serve --http` with a certificate and key given (`--tls-cert`, `--tls-key`,
//! PEM files), through rustls: for a server other machines reach without a proxy in front.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// Reads the certificate chain and the private key and makes the acceptor.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .with_context(|| format!("reading the certificates in {}", cert.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", cert.display());
    }
    let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .with_context(|| format!("reading the private key in {}", key.display()))?
        .with_context(|| format!("{} holds no PEM private key", key.display()))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .with_context(|| {
            format!(
                "the key in {} does not suit the certificate in {}",
                key.display(),
                cert.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
