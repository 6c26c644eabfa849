//! Deploy, undeploy, restore and delete for each of the four kinds: live, and while the gateway is stopped.

use super::*;
use crate::common::*;

both_backends!(
    live_lifecycle_for_every_kind,
    changes_made_while_the_gateway_is_stopped_converge_on_start,
    seed_delete_after_deployment_delete_reaches_the_gateway,
);

async fn live_lifecycle_for_every_kind(backend: Backend) {
    let Some(env) = setup(backend, &[], &[], false).await else {
        return;
    };
    env.base_provider().await;
    for c in KINDS {
        let id = format!("live-{}", event_prefix(c));
        env.create(c, &id).await;
        assert_eq!(
            env.probe(c, &id).await,
            404,
            "{c}: not served before deploy"
        );
        // deploy → served, and DEPLOYED only on the gateway's ack
        let d = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &d, "DEPLOYED").await;
        let (_, held) = env.held(c, &id).await;
        assert_eq!(held["status"]["origin"], "control_plane");
        assert_eq!(held["status"]["deploymentId"], d.as_str());
        // undeploy → 404, held undeployed
        env.action(c, &id, &d, "undeploy").await;
        env.wait_probe(c, &id, 404).await;
        env.wait_dep_status(c, &id, &d, "UNDEPLOYED").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        // restore → served
        env.action(c, &id, &d, "restore").await;
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &d, "DEPLOYED").await;
        // delete while deployed → management 404 and traffic 404
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
        env.wait_probe(c, &id, 404).await;
        // delete while undeployed → management 404
        env.create(c, &id).await;
        let d = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.action(c, &id, &d, "undeploy").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
    }
    // The platform sees the gateway connected and in sync.
    let g = eventually(WAIT, "the gateway to be in sync", || async {
        let (_, g) = env.admin.get("/api/v1/gateways/edge").await.ok()?;
        (g["status"]["inSync"] == true && g["status"]["connected"] == true).then_some(g)
    })
    .await
    .unwrap();
    assert_eq!(g["status"]["appliedRevision"], g["status"]["orgRevision"]);
}

async fn changes_made_while_the_gateway_is_stopped_converge_on_start(backend: Backend) {
    let Some(mut env) = setup(backend, &[], &[], false).await else {
        return;
    };
    env.base_provider().await;
    let mut deps = std::collections::HashMap::new();
    // deploy while stopped
    env.gw.kill();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.create(c, &id).await;
        deps.insert(c, env.deploy(c, &id).await);
    }
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &deps[c], "DEPLOYED").await;
    }
    // undeploy while stopped (proxy before its provider is irrelevant: the base provider stays)
    env.gw.kill();
    for c in KINDS {
        env.action(
            c,
            &format!("sync-{}", event_prefix(c)),
            &deps[c],
            "undeploy",
        )
        .await;
    }
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.wait_probe(c, &id, 404).await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        env.wait_dep_status(c, &id, &deps[c], "UNDEPLOYED").await;
    }
    // restore while stopped
    env.gw.kill();
    for c in KINDS {
        env.action(c, &format!("sync-{}", event_prefix(c)), &deps[c], "restore")
            .await;
    }
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        env.wait_probe(c, &format!("sync-{}", event_prefix(c)), 200)
            .await;
    }
    // delete (deployed ones, and an undeployed one) while stopped
    env.gw.kill();
    for c in ["rest-apis", "mcp-proxies", "llm-proxies"] {
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/sync-{}", event_prefix(c)))
                .await
                .unwrap()
                .0,
            204
        );
    }
    env.action(
        "llm-providers",
        "sync-llmprovider",
        &deps["llm-providers"],
        "undeploy",
    )
    .await;
    assert_eq!(
        env.admin
            .delete("/api/v1/llm-providers/sync-llmprovider")
            .await
            .unwrap()
            .0,
        204
    );
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.wait_held_state(c, &id, None).await;
        env.wait_probe(c, &id, 404).await;
    }
    env.wait_connected().await;
}

/// The seed's first bug: deploy → undeploy → delete deployment → delete resource must still
/// reach the gateway; the same handle can then be created and deployed again.
async fn seed_delete_after_deployment_delete_reaches_the_gateway(backend: Backend) {
    let Some(env) = setup(backend, &[], &[], false).await else {
        return;
    };
    env.base_provider().await;
    for c in KINDS {
        let id = format!("seed-{}", event_prefix(c));
        env.create(c, &id).await;
        let d = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.action(c, &id, &d, "undeploy").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}/deployments/{d}"))
                .await
                .unwrap()
                .0,
            204
        );
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
        env.wait_probe(c, &id, 404).await;
        // Recreate the same handle, deploy: served (no "configuration already exists").
        env.create(c, &id).await;
        let d2 = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &d2, "DEPLOYED").await;
    }
}
