//! `gatehouse platform` as an operator runs it: generated password, config sources, TLS,
//! bad settings, clean shutdown.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use gatehouse_testkit::{free_addr, Process, TempDir};
use serde_json::json;

async fn wait_healthy(client: &reqwest::Client, url: &str, process: &mut Process) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = process.try_exit() {
            panic!("platform exited ({status}):\n{}", process.output());
        }
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not healthy in time:\n{}",
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn password_in(output: &str) -> Option<String> {
    let line = output
        .lines()
        .find(|l| l.contains("created user 'admin' with password"))?;
    Some(line.rsplit(' ').next()?.trim().to_owned())
}

#[tokio::test]
async fn generated_admin_password_is_printed_once_and_works() {
    let dir = TempDir::new("pw").unwrap();
    let addr = free_addr();
    let args: Vec<String> = [
        "platform",
        "--listen",
        &addr.to_string(),
        "--database",
        "sqlite://./data/platform.db",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let http = reqwest::Client::new();
    let mut p = Process::spawn(Path::new(BIN), &args, dir.path(), &[]).unwrap();
    wait_healthy(&http, &format!("http://{addr}/health"), &mut p).await;
    let output = p.output();
    let password = password_in(&output).unwrap_or_else(|| panic!("no password printed:\n{output}"));
    assert!(password.len() >= 32, "{password}");
    assert_eq!(
        output.matches(&password).count(),
        1,
        "printed once, never logged again"
    );
    assert!(
        dir.path().join("data/platform.db").exists(),
        "the SQLite file is created on first start"
    );
    let anon = Client::anonymous(&format!("http://{addr}"));
    let (s, _) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": password}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);

    // Restart on the same database: nothing new is printed and the password still works.
    assert!(
        p.terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "clean exit on SIGTERM"
    );
    let mut p = Process::spawn(Path::new(BIN), &args, dir.path(), &[]).unwrap();
    wait_healthy(&http, &format!("http://{addr}/health"), &mut p).await;
    assert!(password_in(&p.output()).is_none(), "{}", p.output());
    let (s, _) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": password}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
}

#[tokio::test]
async fn settings_come_from_toml_file_and_environment() {
    let dir = TempDir::new("cfg").unwrap();
    let addr = free_addr();
    std::fs::write(
        dir.path().join("platform.toml"),
        format!("listen = \"{addr}\"\ndatabase = \"sqlite://./from-file.db\"\nbody-limit = 100\n"),
    )
    .unwrap();
    let args: Vec<String> = ["platform", "--config", "platform.toml"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut p = Process::spawn(
        Path::new(BIN),
        &args,
        dir.path(),
        &[
            ("GATEHOUSE_ADMIN_PASSWORD", "from-env"),
            ("GATEHOUSE_LOG_FORMAT", "json"),
        ],
    )
    .unwrap();
    wait_healthy(
        &reqwest::Client::new(),
        &format!("http://{addr}/health"),
        &mut p,
    )
    .await;
    assert!(dir.path().join("from-file.db").exists());
    let anon = Client::anonymous(&format!("http://{addr}"));
    let (s, b) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "from-env"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let admin = anon.with_bearer(b["token"].as_str().unwrap());
    // body-limit = 100 bytes from the file.
    let (s, _) = admin
        .post("/api/v1/projects", &json!({"displayName": "x".repeat(200)}))
        .await
        .unwrap();
    assert_eq!(s, 413);
    // JSON logs from the environment.
    let out = p.output();
    let first = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON log line:\n{out}"));
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "{first}"
    );
    assert!(!out.contains("from-env"), "the password is never logged");
}

#[tokio::test]
async fn bad_settings_fail_fast_with_a_clear_message() {
    let dir = TempDir::new("bad").unwrap();
    for (args, needle) in [
        (
            vec!["platform", "--database", "mysql://x/y"],
            "unsupported database URL",
        ),
        (
            vec!["platform", "--deployment-timeout", "soon"],
            "deployment-timeout",
        ),
        (
            vec!["platform", "--disable-capability", "teleport"],
            "unknown capability 'teleport'",
        ),
        (vec!["platform", "--tls-cert", "c.pem"], "--tls-key"),
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(needle), "{args:?}: {text}");
    }
}

#[tokio::test]
async fn serves_https_with_a_configured_certificate() {
    let dir = TempDir::new("tls").unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(dir.path())
        .output()
        .expect("openssl is installed");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let addr = free_addr();
    let args: Vec<String> = [
        "platform",
        "--listen",
        &addr.to_string(),
        "--database",
        "sqlite://./p.db",
        "--admin-password",
        "pw",
        "--tls-cert",
        "cert.pem",
        "--tls-key",
        "key.pem",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut p = Process::spawn(Path::new(BIN), &args, dir.path(), &[]).unwrap();
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    wait_healthy(&https, &format!("https://{addr}/health"), &mut p).await;
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/health"))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP is not served on a TLS listener"
    );
}
