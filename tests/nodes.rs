//! Several agedrop nodes behind HAProxy, configured by deploy/haproxy.cfg (with only its
//! addresses changed): a source's session lives in one node's memory, so the balancer
//! must keep a logged-in source on that node.

mod common;

use common::*;

/// Two nodes on one bucket with one instance secret, and HAProxy in front of them.
fn two_nodes(garage: &Garage) -> (Server, Server, HaProxy) {
    let (first, second) = Server::two_nodes(|| Options {
        storage: garage.storage_keys(),
        ..Options::default()
    });
    let proxy = HaProxy::start([
        (first.addr, first.journalist),
        (second.addr, second.journalist),
    ]);
    (first, second, proxy)
}

#[test]
fn a_logged_in_source_stays_on_the_node_that_holds_its_session() {
    let garage = Garage::start();
    let (first, second, proxy) = two_nodes(&garage);
    // Requests without a session go to either node, in turn.
    let mut source = Browser::new(proxy.source);
    source.get("/submit");
    let page = source.submit(vec![Part::text("message", b"through the balancer")]);
    assert_eq!(page.status, 200, "{}", page.body);
    let holder = match (first.items().len(), second.items().len()) {
        (1, 0) => &first,
        (0, 1) => &second,
        counts => panic!("one node stored the submission: {counts:?}"),
    };
    // Round robin alone would send every other request to the node without the
    // session; the stick table keeps them all on the one with it.
    for _ in 0..12 {
        let inbox = source.get("/inbox");
        assert_eq!(inbox.status, 200, "{}", inbox.body);
        assert!(inbox.body.contains("Your inbox"), "{}", inbox.body);
    }
    source.get("/submit");
    let follow_up = source.submit(vec![Part::text("message", b"and again")]);
    assert_eq!(follow_up.status, 303, "{}", follow_up.body);
    assert_eq!(
        holder.items().len(),
        2,
        "the follow-up went to the same node"
    );
    // Another source, without a session, may land on either node; both answer.
    for _ in 0..4 {
        assert_eq!(Browser::new(proxy.source).get("/").status, 200);
    }
}
