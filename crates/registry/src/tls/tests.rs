//! The verifier in a real handshake, client and server in memory: a self-signed CA
//! certificate (docker's recipe, `openssl req -x509`, valid until 2126) trusted byte for
//! byte is accepted for its own name only; an untrusted one and an empty store are not.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConnection, ServerConfig, ServerConnection};

use super::{client_config, provider};

const IMAGO_CRT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBlzCCAT6gAwIBAgIUcX4MdXUyFcHMw9cDMckyD0r9hnUwCgYIKoZIzj0EAwIw\n\
FTETMBEGA1UEAwwKaW1hZ28udGVzdDAgFw0yNjEyMDUyMDU4MzFaGA8yMTI2MTEx\n\
MTIwNTgzMVowFTETMBEGA1UEAwwKaW1hZ28udGVzdDBZMBMGByqGSM49AgEGCCqG\n\
SM49AwEHA0IABIfoeNpNNPfFGkvvIzvMF0TkQu5R3K3lcwYGXSq4RZPyT/CMzMiI\n\
apAfSZwX/q6H/YEqJop+t4JEQguGChVTAjujajBoMB0GA1UdDgQWBBSJ7QghIclY\n\
dD5WxCNSjcacwdei7TAfBgNVHSMEGDAWgBSJ7QghIclYdD5WxCNSjcacwdei7TAP\n\
BgNVHRMBAf8EBTADAQH/MBUGA1UdEQQOMAyCCmltYWdvLnRlc3QwCgYIKoZIzj0E\n\
AwIDRwAwRAIgJEHFu6ifBZdz1WbNnN/FNgW/oiSKloJyCnVhZqY770ICIBr587g4\n\
U5p/hv/SIZJ1IQy0Lr5b0uIqjRxKUxWhYjwg\n\
-----END CERTIFICATE-----\n\
";
const IMAGO_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHnieg4m144LZH+wX\n\
R72ivmRtjE4V4+DSJ52NAlvrqKGhRANCAASH6HjaTTT3xRpL7yM7zBdE5ELuUdyt\n\
5XMGBl0quEWT8k/wjMzIiGqQH0mcF/6uh/2BKiaKfreCREILhgoVUwI7\n\
-----END PRIVATE KEY-----\n\
";
const OTHER_CRT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBlzCCAT6gAwIBAgIUbJli2Y2qslPZEllSIBUc3jWuPMYwCgYIKoZIzj0EAwIw\n\
FTETMBEGA1UEAwwKb3RoZXIudGVzdDAgFw0yNjEyMDUyMDU4MzFaGA8yMTI2MTEx\n\
MTIwNTgzMVowFTETMBEGA1UEAwwKb3RoZXIudGVzdDBZMBMGByqGSM49AgEGCCqG\n\
SM49AwEHA0IABF3zf6u3iMDEauxnywIz4avLFyWWOMxkuVuhfOEdfnCAkHp/PD6L\n\
c50uU+e0eFPQaJWcFciZH7GpjtU1AaNv0iijajBoMB0GA1UdDgQWBBTcoLFAjrCF\n\
rOZpSZqBROnrZvf4IjAfBgNVHSMEGDAWgBTcoLFAjrCFrOZpSZqBROnrZvf4IjAP\n\
BgNVHRMBAf8EBTADAQH/MBUGA1UdEQQOMAyCCm90aGVyLnRlc3QwCgYIKoZIzj0E\n\
AwIDRwAwRAIgOetNDr8P9PCFpwSzP/dRqzZEcOfoqrwbNMwvgsg684gCIBk5yBh/\n\
6KlCkYSVTwEwBPKCf+3qgUW7gfND2nNG+yyH\n\
-----END CERTIFICATE-----\n\
";

fn cert(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Shuttle TLS records between the two until both finish or one fails.
fn handshake(
    roots: Vec<CertificateDer<'static>>,
    verify: bool,
    name: &str,
) -> Result<(), rustls::Error> {
    let server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert(IMAGO_CRT)],
            PrivateKeyDer::from_pem_slice(IMAGO_KEY.as_bytes()).unwrap(),
        )
        .unwrap();
    let mut s = ServerConnection::new(Arc::new(server)).unwrap();
    let config = client_config(roots, verify).unwrap();
    let mut c = ClientConnection::new(config, name.to_owned().try_into().unwrap()).unwrap();
    for _ in 0..16 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            // A server-side failure is the client's alert: the client reports it below.
            if s.process_new_packets().is_err() {
                break;
            }
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets()?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn a_trusted_self_signed_certificate_is_accepted_for_its_name() {
    handshake(vec![cert(OTHER_CRT), cert(IMAGO_CRT)], true, "imago.test").unwrap();
}

#[test]
fn a_trusted_self_signed_certificate_is_refused_for_another_name() {
    let e = handshake(vec![cert(IMAGO_CRT)], true, "other.test").unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let e = handshake(vec![cert(OTHER_CRT)], true, "imago.test").unwrap_err();
    assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e}");
}

#[test]
fn an_empty_trust_store_says_where_to_put_one() {
    let e = handshake(Vec::new(), true, "imago.test").unwrap_err();
    assert!(e.to_string().contains("SSL_CERT_FILE"), "{e}");
}

#[test]
fn no_verification_accepts_anything() {
    handshake(Vec::new(), false, "other.test").unwrap();
}
