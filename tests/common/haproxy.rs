//! HAProxy in front of several agedrop nodes, configured by deploy/haproxy.cfg itself
//! with only its addresses changed, killed when its handle drops.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{eventually, require_tool, KillOnDrop};

pub struct HaProxy {
    pub source: SocketAddr,
    pub journalist: SocketAddr,
    pub dir: tempfile::TempDir,
    _child: KillOnDrop,
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl HaProxy {
    /// Starts HAProxy with the sample's config, its frontends on free loopback ports and
    /// its two nodes at `nodes` (each a node's source and journalist addresses).
    pub fn start(nodes: [(SocketAddr, SocketAddr); 2]) -> HaProxy {
        let haproxy = require_tool("haproxy");
        let sample = include_str!("../../deploy/haproxy.cfg");
        let (source, journalist) = (free_addr(), free_addr());
        let mut config = sample
            .replace("bind 127.0.0.1:8080", &format!("bind {source}"))
            .replace("bind 127.0.0.1:8081", &format!("bind {journalist}"));
        for (n, (node_source, node_journalist)) in nodes.iter().enumerate() {
            let ip = format!("10.0.0.1{}", n + 1);
            config = config
                .replace(&format!("{ip}:8080"), &node_source.to_string())
                .replace(&format!("{ip}:8081"), &node_journalist.to_string());
        }
        assert!(
            config
                .lines()
                .filter(|line| line.trim_start().starts_with("server "))
                .all(|line| !line.contains("10.0.0.")),
            "every node address was replaced"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let proxy = HaProxy {
            source,
            journalist,
            dir,
            _child: KillOnDrop(child),
        };
        eventually("HAProxy listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect(source).is_ok()
        });
        proxy
    }
}
