//! A certificate authority made for one test: a CA certificate and server certificates
//! it signs, written as PEM files to a temporary folder. No key leaves the test run.
//! bakfleet's own tests include this file too.
#![allow(dead_code)] // Each test file uses a different subset.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// A CA with its key, and the folder its PEM files go to.
pub struct TestCa {
    dir: TempDir,
    issuer: CertifiedIssuer<'static, KeyPair>,
    ca_file: PathBuf,
    issued: AtomicUsize,
}

/// A server certificate and its key as PEM files, for `[instance.tls]`.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

impl ServerFiles {
    /// Returns the simulator's `[instance.tls]` table for these files.
    pub fn sim_table(&self, force_encryption: bool) -> String {
        format!(
            "[instance.tls]\ncertificate = {:?}\nprivate_key = {:?}\nforce_encryption = {force_encryption}\n",
            self.certificate.display().to_string(),
            self.private_key.display().to_string(),
        )
    }
}

impl TestCa {
    /// Creates a CA whose subject common name is `name`.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().expect("creating the CA folder failed");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::self_signed(params, key).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, issuer.pem()).unwrap();
        TestCa {
            dir,
            issuer,
            ca_file,
            issued: AtomicUsize::new(0),
        }
    }

    /// Returns the PEM file of the CA certificate, for `ca_file` settings.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses); the first
    /// name is also the subject common name, which python-tds checks.
    pub fn server_certificate(&self, names: &[&str]) -> ServerFiles {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();

        let index = self.issued.fetch_add(1, Ordering::SeqCst);
        let files = ServerFiles {
            certificate: self.dir.path().join(format!("server-{index}.pem")),
            private_key: self.dir.path().join(format!("server-{index}.key")),
        };
        std::fs::write(&files.certificate, certificate.pem()).unwrap();
        std::fs::write(&files.private_key, key.serialize_pem()).unwrap();
        files
    }
}
