//! Phones with few links spend them on the most useful peers: besides the
//! link to the next higher peer (which keeps the LAN in one piece), a phone
//! links to the powered stage box, which stays up and carries for everyone.
//!
//! Four phones on battery with `--peer-limit 3` (two links they dial, one
//! kept for a lower phone's dial) and a box on mains power. Only the lower
//! PeerId dials, so every phone below the box in id order must end up linked
//! to it. The phones link with each other before the box appears, so the
//! lowest phone (at least two are below the box) has filled both its slots
//! with phones and must move one of those links to the box.

use std::time::Instant;

use festival_lab::{deadline, phase, wait_all, Lan, NodeProc};

const PHONES: usize = 4;
const PHONE_ARGS: &[&str] = &["--power", "battery:80", "--peer-limit", "3"];

#[test]
fn phones_below_the_stage_box_link_to_it() {
    let start = Instant::now();
    let lan = Lan::new(PHONES + 1);
    let mut phones: Vec<NodeProc> = (1..=PHONES).map(|h| lan.spawn(h, &format!("phone{h}"), PHONE_ARGS)).collect();
    // Let the phones fill the slots they dial (two, or fewer higher phones)
    // with each other first, so the box must win a slot from a phone.
    let by = deadline(20);
    for p in &phones {
        let higher = phones.iter().filter(|q| q.peer > p.peer).count();
        p.wait_until("its dialled links", by, |l| (l.linked().len() >= higher.min(2)).then_some(()));
    }
    phase(start, "phones linked with each other");
    // Ids are random. A box below every phone would make the check below
    // empty: start it with fresh identities until at least two phones are
    // below it (3 in 5 tries on average pass).
    let mut tries = 0;
    let mut boxed = loop {
        tries += 1;
        let b = lan.spawn(0, "stage-box", &["--power", "mains"]);
        if phones.iter().filter(|p| p.peer < b.peer).count() >= 2 || tries == 30 {
            break b;
        }
        drop(b);
    };
    let below: Vec<&NodeProc> = phones.iter().filter(|p| p.peer < boxed.peer).collect();
    assert!(below.len() >= 2, "no box identity above two phones in {tries} tries");
    phase(start, &format!("box started ({tries} identities), {} phones below it", below.len()));

    let by = deadline(30);
    for p in &below {
        let box_id = boxed.peer.clone();
        let graph = || -> String {
            phones.iter().map(|n| format!("\n  {} {}..: {:?}", n.name, &n.peer[..8], n.log().linked())).collect()
        };
        if p.try_wait_until(by, |l| l.linked().contains(&box_id).then_some(())).is_err() {
            panic!("{} never linked to the box {}..; links:{}\n{}", p.name, &box_id[..8], graph(), p.diagnostics());
        }
    }
    phase(start, "every phone below the box is linked to it");

    for p in &mut phones {
        let links = p.status()["links"].as_u64().expect("links");
        assert!(links <= 3, "{}: {links} links over its limit", p.name);
    }

    // And the mesh still carries everything.
    let mut ids = vec![boxed.say("doors open at the main stage")];
    for p in &mut phones {
        ids.push(p.say(&format!("{} is here", p.name)));
    }
    wait_all(phones.iter().chain([&boxed]), "every message", deadline(30), |l| l.has_all(&ids));
    phase(start, "every message on every node");
    for p in &mut phones {
        p.quit();
    }
    boxed.quit();
}
