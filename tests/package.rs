//! The Debian package (`cargo deb`, metadata in Cargo.toml, maintainer scripts in
//! deploy/debian): built from the binary this suite already built, checked by lintian,
//! then installed, used and purged in a throwaway root, never the machine's own.
//!
//! The throwaway root is an overlay over `/` in a mount namespace of its own (`unshare
//! --mount`), its upper layer on a tmpfs: whatever dpkg writes there vanishes with the
//! namespace, and the machine's /usr, /etc and /var stay as they were (checked).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// Builds the .deb into `out` from the test binary's build (no second build): cargo-deb
/// takes `target/<profile>/agedrop` from the target directory the tests were built in.
fn build_deb(out: &Path) -> PathBuf {
    let cargo_deb = require_tool("cargo-deb");
    let bin = Path::new(BIN);
    let profile_dir = bin.parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let profile = profile_dir.file_name().unwrap().to_str().unwrap();
    let mut command = Command::new(cargo_deb);
    command
        .args(["--no-build", "--quiet", "--profile", profile, "--output"])
        .arg(out)
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(cargo) = std::env::var_os("CARGO") {
        command.env("CARGO", cargo);
    }
    let built = command.output().unwrap();
    assert!(built.status.success(), "cargo deb: {}", stderr(&built));
    let name = String::from_utf8(built.stdout).unwrap();
    PathBuf::from(name.trim())
}

/// What the machine's own root must still be after the test.
#[derive(Debug, PartialEq)]
struct HostState {
    passwd: String,
    group: String,
    dpkg_status: String,
    paths: Vec<(&'static str, bool)>,
}

impl HostState {
    fn read() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap();
        HostState {
            passwd: read("/etc/passwd"),
            group: read("/etc/group"),
            dpkg_status: read("/var/lib/dpkg/status"),
            paths: [
                "/usr/bin/agedrop",
                "/usr/lib/systemd/system/agedrop.service",
                "/usr/share/doc/agedrop",
                "/var/lib/agedrop",
                "/etc/agedrop",
            ]
            .into_iter()
            .map(|p| (p, Path::new(p).exists()))
            .collect(),
        }
    }
}

/// A copy-on-write root: an overlay over `/` (upper layer on a tmpfs) in a mount
/// namespace held open by one process, which the guard kills. Commands enter it with
/// `nsenter` and `chroot`.
struct ThrowawayRoot {
    holder: KillOnDrop,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl ThrowawayRoot {
    fn new() -> Self {
        require_tool("unshare");
        require_tool("nsenter");
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("ns");
        std::fs::create_dir(&ns).unwrap();
        // Mounts made in the new namespace are private to it (unshare's default
        // propagation): none of them reaches the machine's mount table.
        let setup = r#"set -e
ns=$1
mount -t tmpfs -o mode=0755 tmpfs "$ns"
mkdir "$ns/upper" "$ns/work" "$ns/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$ns/upper,workdir=$ns/work" "$ns/root"
mount --rbind /dev "$ns/root/dev"
mount -t proc proc "$ns/root/proc"
mount -t tmpfs -o mode=0755 tmpfs "$ns/root/run"
mount -t tmpfs -o mode=1777 tmpfs "$ns/root/tmp"
echo ready
exec sleep infinity
"#;
        let mut child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                setup,
                "sh",
            ])
            .arg(&ns)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        if line != "ready\n" {
            let failed = child.wait_with_output().unwrap();
            panic!(
                "cannot make the throwaway root (this test needs root): {}",
                stderr(&failed)
            );
        }
        let holder = KillOnDrop(child);
        ThrowawayRoot {
            holder,
            root: ns.join("root"),
            _dir: dir,
        }
    }

    /// `args` run as root inside the throwaway root.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.holder.0.id()))
            .args(["--mount", "--", "chroot"])
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .env("DEBIAN_FRONTEND", "noninteractive");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// A shell command that must succeed; its standard output.
    fn sh(&self, script: &str) -> String {
        let out = self.run(&["sh", "-c", script]);
        assert!(
            out.status.success(),
            "in the throwaway root: {script}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `owner:group mode` of each path, one line each.
    fn modes(&self, paths: &[&str]) -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                self.sh(&format!("stat -c '%U:%G %a' {p}"))
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    fn exists(&self, path: &str) -> bool {
        self.run(&["test", "-e", path]).status.success()
    }

    /// Copies a file from the machine into the root's /tmp.
    fn copy_in(&self, file: &Path) -> String {
        let name = file.file_name().unwrap().to_str().unwrap();
        let inside = format!("/tmp/{name}");
        let data = std::fs::read(file).unwrap();
        let mut child = self
            .command(&["sh", "-c", &format!("cat > {inside}")])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &data).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        inside
    }
}

const FILES: &[&str] = &[
    "/usr/bin/agedrop",
    "/var/lib/agedrop",
    "/usr/lib/systemd/system/agedrop.service",
    "/usr/share/doc/agedrop/copyright",
    "/usr/share/doc/agedrop/examples/agedrop.toml",
    "/usr/share/doc/agedrop/examples/torrc",
    "/usr/share/doc/agedrop/examples/journalist-tls.sh",
    "/usr/share/doc/agedrop/admin.md",
    "/usr/share/doc/agedrop/SECURITY.md",
];

#[test]
fn the_package_lints_installs_serves_and_purges_in_a_throwaway_root() {
    let before = HostState::read();
    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(work.path());

    // lintian: no errors. Its warnings are listed, and justified, in docs/admin.md.
    let lintian = Command::new(require_tool("lintian"))
        .args(["--allow-root", "--fail-on", "error"])
        .arg(&deb)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&lintian.stdout).into_owned();
    assert!(
        lintian.status.success() && !report.lines().any(|l| l.starts_with("E:")),
        "lintian reports errors:\n{report}{}",
        stderr(&lintian)
    );
    let expected_warnings = [
        "W: agedrop: initial-upload-closes-no-bugs [usr/share/doc/agedrop/changelog.Debian.gz:1]",
        "W: agedrop: no-manual-page [usr/bin/agedrop]",
    ];
    assert_eq!(report.lines().collect::<Vec<_>>(), expected_warnings);

    let newsroom = Newsroom::new(work.path());
    {
        let root = ThrowawayRoot::new();
        let deb = root.copy_in(&deb);

        // Installed: files, owners and modes; the user; the unit neither enabled nor
        // started (there is no config yet).
        root.sh(&format!("dpkg -i {deb}"));
        assert_eq!(
            root.modes(FILES),
            [
                "root:root 755",
                "agedrop:agedrop 700",
                "root:root 644",
                "root:root 644",
                "root:root 644",
                "root:root 644",
                "root:root 644",
                "root:root 644",
                "root:root 644",
            ]
        );
        let user = root.sh("getent passwd agedrop");
        let fields: Vec<&str> = user.trim().split(':').collect();
        assert_eq!(
            fields[5..],
            ["/var/lib/agedrop", "/usr/sbin/nologin"],
            "{user}"
        );
        assert!(
            fields[2].parse::<u32>().unwrap() < 1000,
            "a system user: {user}"
        );
        let groups = root.sh("id -nG agedrop");
        assert_eq!(
            groups.split_whitespace().collect::<Vec<_>>(),
            ["agedrop", "debian-tor"]
        );
        let unit = root.sh("cat /usr/lib/systemd/system/agedrop.service");
        assert!(unit
            .contains("\nExecStart=/usr/bin/agedrop serve --config /etc/agedrop/agedrop.toml\n"));
        assert_eq!(root.sh("find /etc/systemd -name 'agedrop*'"), "");
        assert!(!root.exists("/etc/agedrop"));

        // Purged before any init: everything the package made is gone.
        let purge = root.sh("dpkg --purge agedrop");
        assert!(!purge.contains("kept"), "{purge}");
        for gone in FILES.iter().chain(&["/etc/agedrop"]) {
            assert!(!root.exists(gone), "{gone} is left after purge");
        }

        // Installed again and set up the documented way (docs/admin.md, sections 3 to
        // 7): init as root for the service user, then every command as that user.
        root.sh(&format!("dpkg -i {deb}"));
        root.sh(&format!(
            "agedrop init --recipient {} --dir /etc/agedrop --data-dir /var/lib/agedrop --owner agedrop",
            newsroom.recipient
        ));
        assert_eq!(
            root.modes(&[
                "/etc/agedrop/agedrop.toml",
                "/var/lib/agedrop",
                "/var/lib/agedrop/instance-secret"
            ]),
            [
                "root:agedrop 640",
                "agedrop:agedrop 700",
                "agedrop:agedrop 600"
            ]
        );
        // Any free port: the suite runs beside other servers.
        root.sh("sed -i 's/127.0.0.1:808[01]/127.0.0.1:0/' /etc/agedrop/agedrop.toml");
        let as_agedrop =
            |args: &str| format!("setpriv --reuid=agedrop --regid=agedrop --init-groups {args}");
        root.sh(&as_agedrop(
            "agedrop journalist add ana --config /etc/agedrop/agedrop.toml",
        ));
        let log = work.path().join("serve.log");
        let (serve, listening) = spawn_listening(
            &mut root.command(&[
                "setpriv",
                "--reuid=agedrop",
                "--regid=agedrop",
                "--init-groups",
                "agedrop",
                "serve",
                "--config",
                "/etc/agedrop/agedrop.toml",
            ]),
            &log,
        );
        let page = get(Listening::tcp(&listening.source), "/");
        assert_eq!(page.status, 200, "{}", page.body);
        drop(serve);

        // Upgraded (the same version again runs every upgrade script): the drop, its
        // owners and modes stay as they were, and the unit is still not enabled.
        let drop_state = "sha256sum /var/lib/agedrop/instance-secret /etc/agedrop/agedrop.toml \
                          && stat -c '%U:%G %a %n' /var/lib/agedrop /var/lib/agedrop/* \
                          /etc/agedrop/agedrop.toml";
        let before_upgrade = root.sh(drop_state);
        root.sh(&format!("dpkg -i {deb}"));
        assert_eq!(root.sh(drop_state), before_upgrade);
        assert_eq!(root.sh("find /etc/systemd -name 'agedrop*'"), "");
        let accounts = root.sh(&as_agedrop(
            "agedrop journalist list --config /etc/agedrop/agedrop.toml",
        ));
        assert!(accounts.contains("ana"), "{accounts}");

        // Purged after init: the drop's data and config stay, and purge says so.
        let purge = root.sh("dpkg --purge agedrop");
        assert!(purge.contains("agedrop: kept /var/lib/agedrop"), "{purge}");
        assert!(purge.contains("agedrop: kept /etc/agedrop"), "{purge}");
        for gone in [
            "/usr/bin/agedrop",
            "/usr/lib/systemd/system/agedrop.service",
            "/usr/share/doc/agedrop",
        ] {
            assert!(!root.exists(gone), "{gone} is left after purge");
        }
        assert_eq!(
            root.modes(&[
                "/var/lib/agedrop/instance-secret",
                "/etc/agedrop/agedrop.toml"
            ]),
            ["agedrop:agedrop 600", "root:agedrop 640"]
        );
        assert!(root.sh("getent passwd agedrop").starts_with("agedrop:"));
    }

    assert_eq!(HostState::read(), before, "the machine's own root changed");
}
