//! Micro-benchmark of one RS256 signature check, the cost of every uncached bearer request:
//! jsonwebtoken's `decode` (which rebuilds the RSA key from its components on every call) against
//! a key parsed once with aws-lc-rs. Run with `cargo bench --bench token_verify`.

use std::time::Instant;

use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey, RsaKeyPair};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};

const N: u32 = 20_000;

fn per_second(label: &str, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let start = Instant::now();
    for _ in 0..N {
        f();
    }
    let rate = f64::from(N) / start.elapsed().as_secs_f64();
    println!("{label:<48} {rate:>10.0} /s  {:>6.1} µs", 1e6 / rate);
    rate
}

fn main() {
    let pem = include_bytes!("../tests/fixtures/forger-rsa.pem");
    let body: String = std::str::from_utf8(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let pair = RsaKeyPair::from_der(&der).unwrap();
    let public_der = pair.public_key().as_ref().to_vec();

    let claims = json!({"iss": "http://127.0.0.1:8180/realms/keygate", "sub": "s", "typ": "Bearer",
                        "aud": ["keygate"], "exp": 4_000_000_000u64, "iat": 1_700_000_000u64});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(pem).unwrap(),
    )
    .unwrap();

    let key = DecodingKey::from_rsa_der(&public_der);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    let jwt = per_second("jsonwebtoken::decode (key rebuilt per call)", || {
        jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    });

    let parsed = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public_der).unwrap();
    let (signing_input, sig) = token.rsplit_once('.').unwrap();
    let parsed_rate = per_second("aws-lc ParsedPublicKey + claims JSON", || {
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        parsed.verify_sig(signing_input.as_bytes(), &sig).unwrap();
        let payload = signing_input.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        let _: Value = serde_json::from_slice(&bytes).unwrap();
    });
    println!("parsed key / jsonwebtoken: {:.2}x", parsed_rate / jwt);
}
