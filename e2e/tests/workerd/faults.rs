//! Faults: Accelo failing, limiting, slow or refusing tokens, and the worker killed mid-work;
//! every accepted ticket still ends as one issue.

use std::sync::Arc;
use std::time::Duration;

use e2e::{check, check_eq, ticket, Ctx, Outcome};
use serde_json::json;
use standins::Fault;

use crate::common::{
    check_issue, creates_of, deliver_despite, expect_synced, quiet_counts, wait_state,
};

pub async fn accelo_500_is_retried_once_issue(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-500-1";
    let fault = Fault::status("POST", "/api/v0/issues", 500, 1);
    let before = deliver_despite(&c, fault, id).await?;
    expect_synced(&c, id, &before, "a 500").await?;
    let answers: Vec<u16> = creates_of(&c, id).iter().map(|r| r.status).collect();
    check!(
        answers.first() == Some(&500) && answers.contains(&200),
        "POST /issues answers for {id}: {answers:?}, expected a 500 then a 200"
    );
    Ok(())
}

pub async fn accelo_429_waits_for_the_window(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-429-1";
    let fault = Fault {
        retry_after_secs: Some(2),
        ..Fault::status("POST", "/api/v0/issues", 429, 1)
    };
    let before = deliver_despite(&c, fault, id).await?;
    expect_synced(&c, id, &before, "a 429").await?;
    let answers: Vec<(u16, u64)> = creates_of(&c, id)
        .iter()
        .map(|r| (r.status, r.at))
        .collect();
    check!(
        answers.len() == 2 && answers[0].0 == 429 && answers[1].0 == 200,
        "POST /issues answers for {id}: {answers:?}, expected a 429 then a 200"
    );
    // X-RateLimit-Reset was 2 s ahead: the retry must not come at once.
    check!(
        answers[1].1 > answers[0].1,
        "retried within the same second as the 429: {answers:?}"
    );
    Ok(())
}

pub async fn expired_token_is_refreshed(c: Arc<Ctx>) -> Outcome {
    let id = "E2E-TOKEN-1";
    check!(
        c.stand.accelo_state().tokens_issued > 0,
        "no Accelo token was issued before this scenario"
    );
    quiet_counts(&c).await?;
    c.stand.expire_accelo_tokens();
    let issued = c.stand.accelo_state().tokens_issued;
    c.post_ticket(&ticket(id, json!({})), 1).await?;
    c.wait_issue(id, |_| true).await?;
    let rec = c.settle(id).await?;
    check_eq!(rec["state"], json!("synced"), "state after a token refresh");
    check!(
        c.stand.accelo_state().tokens_issued > issued,
        "the bridge did not ask for a new token"
    );
    Ok(())
}

pub async fn slow_accelo_does_not_slow_callback(c: Arc<Ctx>) -> Outcome {
    quiet_counts(&c).await?;
    c.stand
        .set_accelo_fault(Fault::delay("POST", "/api/v0/issues", 5000, 2));
    let limit = Duration::from_secs(1);
    let first = c.post_ticket(&ticket("E2E-SLOW-1", json!({})), 1).await?;
    check!(
        first.elapsed < limit,
        "first callback took {:?}",
        first.elapsed
    );
    // By now the bridge is waiting on the slow Accelo for the first ticket.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = c.post_ticket(&ticket("E2E-SLOW-2", json!({})), 1).await?;
    check!(
        second.elapsed < limit,
        "callback while Accelo is slow took {:?}",
        second.elapsed
    );
    c.wait_issue("E2E-SLOW-1", |_| true).await?;
    c.wait_issue("E2E-SLOW-2", |_| true).await?;
    Ok(())
}

pub async fn update_during_slow_create_makes_one_issue(c: Arc<Ctx>) -> Outcome {
    // A newer snapshot arrives while the create is still waiting on a slow Accelo.
    let id = "E2E-SLOWUPD-1";
    quiet_counts(&c).await?;
    c.stand
        .set_accelo_fault(Fault::delay("POST", "/api/v0/issues", 4000, 1));
    c.post_ticket(
        &ticket(
            id,
            json!({"Subject": "slow v1", "UpdatedDate": "2026-12-04T09:15:00Z"}),
        ),
        1,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    c.post_ticket(&ticket(id, json!({"Subject": "slow v2", "Priority": "High", "UpdatedDate": "2026-12-04T09:30:00Z"})), 1).await?;
    c.wait_issue(id, |i| i["title"] == "slow v2").await?;
    c.settle(id).await?;
    check_issue(
        &c.one_issue(id)?,
        &[("title", "slow v2"), ("issue_priority", "4")],
    )
}

pub async fn accelo_html_503_is_retried(c: Arc<Ctx>) -> Outcome {
    // A gateway error with an HTML body (not Accelo's envelope), twice.
    let id = "E2E-503-1";
    let fault = Fault::status("POST", "/api/v0/issues", 503, 2);
    let before = deliver_despite(&c, fault, id).await?;
    expect_synced(&c, id, &before, "two 503s").await
}

pub async fn token_refused_then_recovers(c: Arc<Ctx>) -> Outcome {
    // The token endpoint refuses once (as for wrong credentials): not dropped, tried again.
    let id = "E2E-TOKEN-2";
    let before = quiet_counts(&c).await?;
    c.stand.expire_accelo_tokens();
    c.stand
        .set_accelo_fault(Fault::status("POST", "/oauth2/v0/token", 401, 1));
    c.post_ticket(&ticket(id, json!({})), 1).await?;
    expect_synced(&c, id, &before, "a refused token request").await
}

pub async fn accepted_ticket_survives_a_restart(c: Arc<Ctx>) -> Outcome {
    let (retrying, fresh) = ("E2E-RESTART-1", "E2E-RESTART-2");
    // Accelo fails every create for now: the tickets are stored, but cannot become issues yet.
    let fault = Fault::status("POST", "/api/v0/issues", 503, 1000);
    let before = deliver_despite(&c, fault, retrying).await?;
    wait_state(&c, retrying, "retrying").await?;
    // The worker is killed outright, as in a crash, right after the second ticket's 200.
    c.post_ticket(&ticket(fresh, json!({})), 1).await?;
    c.stop_worker(Duration::ZERO).await;
    for id in [retrying, fresh] {
        check!(
            c.issues_for(id).is_empty(),
            "{id} became an issue although Accelo refused every create"
        );
    }
    c.stand.clear_faults();
    c.start_worker_again().await?;

    // Not sent again: the stored tickets and the queue's alarm must have outlived the crash.
    for id in [retrying, fresh] {
        if let Err(e) = c.wait_issue(id, |_| true).await {
            c.admin("POST", "/admin/reconcile").await?.expect(200)?;
            let after_reconcile = match c.wait_issue(id, |_| true).await {
                Ok(_) => "it was".to_string(),
                Err(e) => format!("it was not either: {e}"),
            };
            return Err(format!(
                "{id} not processed by itself after the restart ({e}); after POST /admin/reconcile {after_reconcile}"
            ));
        }
        expect_synced(&c, id, &before, &format!("the restart ({id})")).await?;
    }
    Ok(())
}
