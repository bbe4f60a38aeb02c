//! A throwaway Garage (S3-compatible object store) on loopback: one node, one bucket,
//! one key, started by the test and killed when its handle drops. Looked at from
//! outside agedrop with curl's own SigV4 signing (`--aws-sigv4`), so what the tests
//! see in the bucket does not depend on agedrop's S3 client.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{eventually, hex, noise, require_tool, KillOnDrop};

pub const BUCKET: &str = "agedrop";
pub const REGION: &str = "garage";

pub struct Garage {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    pub key_id: String,
    pub secret_file: PathBuf,
    secret: String,
    config: PathBuf,
    child: Option<KillOnDrop>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Garage {
    /// Starts Garage with a bucket and a key that may read and write it.
    pub fn start() -> Garage {
        require_tool("garage");
        let dir = tempfile::tempdir().unwrap();
        let (s3, rpc, admin) = (free_port(), free_port(), free_port());
        let seed = u64::from(s3) << 32 | u64::from(std::process::id());
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\ncompression_level = \"none\"\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                secret = hex(&noise(32, seed)),
            ),
        )
        .unwrap();
        let key_id = format!("GK{}", hex(&noise(12, seed ^ 1)));
        let secret = hex(&noise(32, seed ^ 2));
        let secret_file = dir.path().join("s3-secret");
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        let mut garage = Garage {
            endpoint: format!("http://127.0.0.1:{s3}"),
            dir,
            key_id,
            secret_file,
            secret,
            config,
            child: None,
        };
        garage.resume();
        let node = garage.node_id();
        garage.admin(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.admin(&["layout", "apply", "--version", "1"]);
        garage.admin(&["bucket", "create", BUCKET]);
        let (key_id, secret) = (garage.key_id.clone(), garage.secret.clone());
        garage.admin(&["key", "import", "--yes", "-n", "agedrop", &key_id, &secret]);
        garage.admin(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", &key_id,
        ]);
        eventually("Garage serves the bucket", Duration::from_secs(30), || {
            garage.try_list("?list-type=2").is_some()
        });
        garage
    }

    /// The `[storage]` keys that point agedrop at this bucket (TOML values).
    pub fn storage_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("kind", "\"s3\"".into()),
            ("endpoint", format!("\"{}\"", self.endpoint)),
            ("bucket", format!("\"{BUCKET}\"")),
            ("region", format!("\"{REGION}\"")),
            ("access_key_id", format!("\"{}\"", self.key_id)),
            (
                "secret_access_key_file",
                format!("\"{}\"", self.secret_file.display()),
            ),
        ]
    }

    /// Kills Garage (its data stays).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.0.kill().unwrap();
            child.0.wait().unwrap();
        }
    }

    /// Starts Garage again on the same data and ports.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "Garage is running");
        let log = std::fs::File::create(self.dir.path().join("garage.log")).unwrap();
        let child = Command::new("garage")
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(KillOnDrop(child));
        eventually(
            "Garage answers its admin commands",
            Duration::from_secs(30),
            || self.try_node_id().is_some(),
        );
    }

    fn try_node_id(&self) -> Option<String> {
        let out = Command::new("garage")
            .arg("-c")
            .arg(&self.config)
            .arg("status")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter_map(|line| line.split_whitespace().next())
            .find(|word| word.len() == 16 && word.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
    }

    fn node_id(&self) -> String {
        self.try_node_id().expect("Garage names its node")
    }

    fn admin(&self, args: &[&str]) {
        let out = Command::new("garage")
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// GET on the bucket with `query`, signed by curl; `None` if Garage does not answer
    /// with 200.
    fn try_list(&self, query: &str) -> Option<String> {
        let out = self
            .curl(&format!("/{BUCKET}{query}"))
            .args(["--max-time", "10", "-w", "\n%{http_code}"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n')?;
        (status == "200").then(|| body.to_owned())
    }

    /// Every object's key in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        let body = self
            .try_list("?list-type=2&max-keys=1000")
            .expect("Garage lists the bucket");
        assert!(
            !body.contains("<IsTruncated>true"),
            "a test bucket holds fewer than 1000 objects"
        );
        let mut keys = tag_values(&body, "Key");
        keys.sort();
        keys
    }

    /// The keys of multipart uploads that were started and neither completed nor
    /// aborted.
    pub fn unfinished_uploads(&self) -> Vec<String> {
        let body = self
            .try_list("?uploads=")
            .expect("Garage lists multipart uploads");
        tag_values(&body, "Key")
    }

    /// An object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let out = self
            .curl(&format!("/{BUCKET}/{key}"))
            .args(["--fail", "--max-time", "60"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "GET {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Stores an object, as another client of the bucket would.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let file = self.dir.path().join("put.tmp");
        std::fs::write(&file, bytes).unwrap();
        let out = self
            .curl(&format!("/{BUCKET}/{key}"))
            .args(["--fail", "--max-time", "60", "-T"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PUT {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// curl with this key's SigV4 signature, for `path` on the endpoint.
    fn curl(&self, path: &str) -> Command {
        let mut curl = Command::new("curl");
        curl.arg("-sS")
            .arg("--aws-sigv4")
            .arg(format!("aws:amz:{REGION}:s3"))
            .arg("--user")
            .arg(format!("{}:{}", self.key_id, self.secret))
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .arg(format!("{}{path}", self.endpoint));
        curl
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

fn tag_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(value, _)| value.to_owned()))
        .collect()
}
