//! One conformance suite for every [`ContainerRuntime`]: each test in `suite` runs
//! against the real Docker engine of this machine and against `FakeRuntime`, so
//! controllers tested on the fake can rely on what the engine does.
//!
//! Docker tests use unique names (`gantry-test-<random>-…`) and a unique cluster label,
//! and remove every container they create, also when they fail.

#![allow(clippy::unwrap_used)]

mod docker_harness;
mod docker_only;
mod fake_harness;
mod suite;
mod test_image;

/// Runs each named suite test against both runtimes.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod docker {
            $(
                #[tokio::test]
                async fn $test() {
                    let harness = crate::docker_harness::DockerHarness::new().await;
                    crate::suite::$test(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
        mod fake {
            $(
                #[tokio::test]
                async fn $test() {
                    crate::suite::$test(&crate::fake_harness::FakeHarness::new()).await;
                }
            )*
        }
    };
}

conformance!(
    exit_codes_are_results,
    logs_arrive_in_order,
    stop_then_remove_leaves_nothing,
    labels_select_containers,
    limits_are_applied,
    events_report_start_and_die,
    names_are_unique,
    missing_image_and_container_are_distinct_errors,
    hardening_is_applied,
    a_workload_network_lives_as_long_as_its_containers,
    a_docker_socket_mount_is_refused_before_anything_exists,
);
