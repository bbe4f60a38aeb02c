//! A real browser with JavaScript disabled (Debian's chromium + chromedriver, driven
//! over the W3C WebDriver protocol): first submission with a file → code → log in →
//! inbox → follow-up. Screenshots are kept as test artefacts.

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_source_without_javascript_submits_logs_in_and_follows_up() {
    let server = Server::start();
    let driver = Driver::start();
    let site = format!("http://{}", server.addr);

    // JavaScript really is off in this browser.
    driver.go("data:text/html,<title>before</title><script>document.title='js ran'</script>");
    assert_eq!(driver.session("GET", "/title", None), json!("before"));

    driver.go(&format!("{site}/"));
    driver.screenshot("1-landing");
    driver.click("a.button");
    assert!(driver.url().ends_with("/submit"));
    let upload = server.dir.path().join("leak.pdf");
    std::fs::write(&upload, noise(300_000, 42)).unwrap();
    driver.type_into("#message", "Documents about the programme.");
    driver.type_into("#files", upload.to_str().unwrap());
    driver.screenshot("2-form");
    driver.click("button[type=submit]");
    driver.wait_for("#code");
    let code = driver.text("#code");
    assert_eq!(code.split(' ').count(), 8, "{code}");
    driver.screenshot("3-code");

    // A later visit: no cookies, log in with the code.
    driver.session("DELETE", "/cookie", None);
    driver.go(&format!("{site}/login"));
    driver.type_into("#code", &code.to_uppercase());
    driver.screenshot("4-login");
    driver.click("button[type=submit]");
    // The inbox is the only page with a logout form.
    driver.wait_for("form[action='/logout']");
    assert!(driver.url().ends_with("/inbox"), "{}", driver.url());
    assert_eq!(driver.count(".reply"), 0);
    driver.screenshot("5-inbox");

    // The follow-up form on the inbox.
    let second = server.dir.path().join("more.txt");
    std::fs::write(&second, "page 4").unwrap();
    driver.type_into("#message", "Here is page 4.");
    driver.type_into("#files", second.to_str().unwrap());
    driver.click("form[action='/submit'] button[type=submit]");
    eventually("the follow-up is stored", SOON, || {
        server.items().len() == 4
    });
    driver.wait_for("form[action='/logout']");
    assert!(driver.url().ends_with("/inbox"), "{}", driver.url());
    driver.screenshot("6-after-follow-up");

    assert_eq!(server.sources(), 1, "the follow-up joined the same source");
    let items = server.items();
    assert_eq!(items.len(), 4);
    let (plain, meta) = server.open_item(&items[1]);
    assert_eq!(meta["filename"], "leak.pdf");
    assert!(
        plain == noise(300_000, 42),
        "the browser's upload decrypts to the file"
    );
    let (plain, _) = server.open_item(&items[3]);
    assert_eq!(plain, b"page 4");
}
