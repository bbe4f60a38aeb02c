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
    // The inbox says what just arrived, so the source does not send it again.
    let receipt = driver.text("#receipt");
    assert!(
        receipt.contains(": 1 message and 1 file.")
            && receipt.contains("you do not need to send it again"),
        "{receipt}"
    );
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

#[test]
fn an_over_long_message_and_a_closed_conversation_get_pages_that_say_so() {
    let mut options = Options::default();
    options.limits.push(("max_message_chars", "40".into()));
    let server = Server::with(options);
    let token = server.add_journalist("editor");
    let driver = Driver::start();
    let site = format!("http://{}", server.addr);

    // The form states the limit in words and does not cut the text silently.
    driver.go(&format!("{site}/submit"));
    assert_eq!(driver.text("#message-limit"), "Up to 40 characters.");
    assert_eq!(
        driver.session(
            "GET",
            &format!("/element/{}/attribute/maxlength", driver.find("#message")),
            None
        ),
        json!(null),
        "no maxlength: an over-long message is refused with a page, not cut"
    );
    driver.type_into("#message", &"a".repeat(41));
    driver.click("button[type=submit]");
    driver.wait_for("h1");
    assert_eq!(driver.text("h1"), "Message too long");
    assert!(driver.text("main").contains("at most 40 characters"));
    assert!(server.items().is_empty());
    driver.screenshot("7-message-too-long");

    // A source the newsroom deleted sees that the conversation is closed.
    driver.go(&format!("{site}/submit"));
    driver.type_into("#message", "short enough");
    driver.click("button[type=submit]");
    driver.wait_for("#code");
    let source_id = server.items()[0].source_id.clone();
    assert_eq!(server.delete_source(&token, &source_id), 204);
    driver.go(&format!("{site}/inbox"));
    driver.wait_for("h1");
    assert_eq!(driver.text("h1"), "Conversation closed");
    assert!(driver.text("main").contains("Your code no longer works"));
    driver.screenshot("8-conversation-closed");
}
