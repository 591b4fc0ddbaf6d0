//! The production guard: an https issuer refuses to start on
//! development adapters unless the operator opts in, and the sandbox
//! reader's signing key is made on the machine, never shipped.
use crate::ops::{KillOnDrop, idp_cmd, wait_ready};
use crate::support::*;

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("idp.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_issuer_refuses_dev_adapters_unless_opted_in() {
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let serve = || {
        let mut c = idp_cmd(&dir, &sqlite_url(&dir));
        c.arg("serve").env("IDP_LISTEN", format!("127.0.0.1:{port}")).env("IDP_ISSUER", "https://id.example.gov.cn");
        c
    };
    // Refused, and the message names the opt-in and every dev adapter.
    let out = serve().output().unwrap();
    assert!(!out.status.success(), "an https issuer started on the sandbox verifier and dev sinks");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["allow_insecure_dev", "sms.gateway", "mail.gateway", "verifier.kind"] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    // `check-config` explains the same without starting anything.
    let mut check = idp_cmd(&dir, &sqlite_url(&dir));
    let out = check.arg("check-config").env("IDP_ISSUER", "https://id.example.gov.cn").output().unwrap();
    assert!(!out.status.success());
    // Opted in (a staging system): it starts and serves.
    let mut c = serve();
    let _node = KillOnDrop(c.env("IDP_ALLOW_INSECURE_DEV", "true").spawn().unwrap());
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_reader_key_is_generated_per_installation() {
    // No key in the shipped fixture.
    let fixture = idp::ports::verifier::sandbox::BUILTIN_FIXTURE;
    assert!(!fixture.lines().any(|l| l.trim_start().starts_with("d =")), "a private key ships in the fixture");
    let key_of = |dir: &std::path::Path| {
        let path = dir.join(idp::ports::verifier::sandbox::READER_KEY_FILE);
        let out = idp_cmd(dir, &sqlite_url(dir)).args(["migrate"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // `identity sandbox-assertion` signs with the installation's key.
        let out = idp_cmd(dir, &sqlite_url(dir))
            .args([
                "identity",
                "sandbox-assertion",
                "--doc-type",
                "resident_id",
                "--number",
                "110101199003074514",
                "--name",
                "张三",
                "--valid-from",
                "2018-06-06",
                "--valid-to",
                "2038-06-06",
                "--place",
                "东城区政务服务中心",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key = std::fs::read_to_string(&path).expect("reader key generated on first use");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        (key, String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let (a, token_a) = key_of(&temp_dir());
    let dir = temp_dir();
    let (b, _) = key_of(&dir);
    assert_ne!(a, b, "two installations share a reader key");
    // The same installation keeps its key across starts.
    let (b_again, _) = key_of(&dir);
    assert_eq!(b, b_again);
    assert_eq!(token_a.split('.').count(), 3, "not a JWS: {token_a}");
}
