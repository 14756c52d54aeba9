"""No secret anywhere Airflow keeps things: every example DAG and the failure paths, then a search.

Every connection carries unique, recognisable secrets (tests/secret_scan.py: ``S3CR3T-<name>-<hex>``
passwords, client secrets, refresh tokens, an encrypted private key and its password, an x509 key),
and the sandbox is started with ``--credentials`` so that it accepts exactly those. The run:

1. every example DAG, plus ``secrets_paths`` (tests/system/secrets_dags): wrong secrets on all five
   platforms (401, DI's login page, an undecryptable key), remote jobs that fail (sandbox config),
   and the other kinds of login (certificate, x509, lite plan, CPI basic auth);
2. ``secrets_http_500``, ``secrets_http_401``, ``secrets_login_page``: one task per platform while
   the sandbox answers every API call with a 500, a 401 or an HTML login page (fault rules).

Then every file under the stack's directory (task logs, scheduler, triggerer, DAG processor, API
server and sandbox output, airflow.cfg, the database file's raw pages) and every column of every
table of the metadata database (zlib-decompressed and Fernet-decrypted with the run's key) are
searched for every secret and its encodings. Excluded: only the sandbox's credentials file and the
environment variables (never written under the stack's directory) that hand the secrets over.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS
from example_dags.run_demo import DAGS, sandbox_connections
from tests.secret_scan import (
    SecretSet,
    fernet_decrypter,
    key_and_cert,
    needles,
    scan_files,
    scan_rows,
    scan_sqlite,
    search,
)
from tests.system.stack import AirflowStack

pytestmark = pytest.mark.system

HERE = Path(__file__).parent
EXAMPLES = sorted(p.stem for p in DAGS.glob("*.py") if p.stem not in ("__init__", "run_demo"))
FAULT_DAGS = {
    "secrets_http_500": {"status": 500, "body": {"error": "internal", "message": "injected by the secrets test"}},
    "secrets_http_401": {"status": 401},
    "secrets_login_page": {"html_login": True},
}
API_PATHS = (
    "^/anaplan/api/",
    "^/sap-job-scheduling/api/",
    "^/sap-cloud-integration/api/",
    "^/sap-data-intelligence/",
    "^/sap-analytics-cloud/tenant/",
)
# 2.11 runs one task at a time (SequentialExecutor, ~10 s each on a busy machine): it gets one fault DAG, the
# 401 one (the re-login path); the provider code under the three faults is the same on both lines.
if not AIRFLOW_V_3_0_PLUS:
    FAULT_DAGS = {"secrets_http_401": FAULT_DAGS["secrets_http_401"]}
RUN_SECONDS = 540 if AIRFLOW_V_3_0_PLUS else 1200


class Secrets:
    """Every secret of the run, the sandbox credentials that accept them, and the connections carrying them."""

    def __init__(self) -> None:
        s = self.set = SecretSet()
        self.anaplan = s.add("anaplan-password", "demo@example.com")
        self.anaplan_wrong = s.add("anaplan-wrong-password", "demo@example.com")
        self.key_password = s.add("anaplan-key-password")
        self.key_password_wrong = s.add("anaplan-wrong-key-password")
        self.cert, self.key, plain = key_and_cert(self.key_password)
        s.pems["anaplan-private-key (encrypted)"] = self.key
        s.pems["anaplan-private-key (decrypted)"] = plain
        self.x509_cert, self.x509_key, _ = key_and_cert(None)
        s.pems["jss-x509-key"] = self.x509_key
        self.jss_client = "sb-secrets!b1|jobscheduler!b1"
        self.jss = s.add("jss-client-secret", self.jss_client)
        self.jss_wrong = s.add("jss-wrong-client-secret", self.jss_client)
        self.jss_lite = s.add("jss-lite-password", "sandbox-user")
        self.cpi_api = s.add("cpi-api-client-secret", "sb-cpi-api!b1|it!b1")
        self.cpi_flow = s.add("cpi-flow-client-secret", "sb-cpi-flow!b1|it-rt!b1")
        self.cpi_wrong = s.add("cpi-wrong-client-secret", "sb-cpi-api!b1|it!b1")
        self.cpi_basic = s.add("cpi-basic-password", "cpi-user")
        self.di = s.add("di-password", "default\\etl_user")
        self.di_wrong = s.add("di-wrong-password", "default\\etl_user")
        self.sac = s.add("sac-client-secret", "sb-sac-interactive-client")
        self.sac_wrong = s.add("sac-wrong-client-secret", "sb-sac-interactive-client")
        self.sac_refresh = s.add("sac-refresh-token")

    def sandbox_credentials(self) -> dict[str, dict[str, str]]:
        return {
            "anaplan": {"password": self.anaplan},
            "sap_job_scheduling": {
                "client_id": self.jss_client,
                "client_secret": self.jss,
                "lite_password": self.jss_lite,
            },
            "sap_cloud_integration": {
                "api_client_secret": self.cpi_api,
                "flow_client_secret": self.cpi_flow,
                "basic_password": self.cpi_basic,
            },
            "sap_data_intelligence": {"password": self.di},
            "sap_analytics_cloud": {"user_client_secret": self.sac, "refresh_token": self.sac_refresh},
        }

    def connections(self, url: str) -> dict[str, dict[str, Any]]:
        conns = json.loads(json.dumps(sandbox_connections(url)))
        conns["anaplan_default"]["password"] = self.anaplan
        uaa = conns["sap_job_scheduling_default"]["extra"]["service_key"]["uaa"]
        uaa.update(clientid=self.jss_client, clientsecret=self.jss)
        cpi = conns["sap_cloud_integration_default"]["extra"]
        cpi["service_key"]["oauth"]["clientsecret"] = self.cpi_api
        cpi["runtime_service_key"]["oauth"]["clientsecret"] = self.cpi_flow
        conns["sap_data_intelligence_default"]["password"] = self.di
        conns["sap_analytics_cloud_default"]["password"] = self.sac
        conns["sap_analytics_cloud_default"]["extra"]["refresh_token"] = self.sac_refresh

        def variant(base: str, **changes: Any) -> dict[str, Any]:
            conn = json.loads(json.dumps(conns[base]))
            extra = changes.pop("extra", {})
            conn.update(changes)
            conn["extra"] = {**conn.get("extra", {}), **extra}
            return conn

        cert_extra = {"auth_type": "certificate", "certificate": self.cert, "private_key": self.key}
        conns["anaplan_wrong"] = variant("anaplan_default", password=self.anaplan_wrong)
        conns["anaplan_cert"] = variant(
            "anaplan_default", password=None, extra={**cert_extra, "private_key_password": self.key_password}
        )
        conns["anaplan_cert_wrong"] = variant(
            "anaplan_default", password=None, extra={**cert_extra, "private_key_password": self.key_password_wrong}
        )
        wrong_key = json.loads(json.dumps(conns["sap_job_scheduling_default"]["extra"]["service_key"]))
        wrong_key["uaa"]["clientsecret"] = self.jss_wrong
        conns["sap_job_scheduling_wrong"] = {"conn_type": "sap_job_scheduling", "extra": {"service_key": wrong_key}}
        conns["sap_job_scheduling_lite"] = {
            "conn_type": "sap_job_scheduling",
            "extra": {
                "lite_plan_url": f"{url}/sap-job-scheduling/api",
                "lite_plan_user": "sandbox-user",
                "lite_plan_password": self.jss_lite,
            },
        }
        x509 = {
            "url": f"{url}/sap-job-scheduling/api",
            "uaa": {
                "clientid": self.jss_client,
                "certificate": self.x509_cert,
                "key": self.x509_key,
                "certurl": f"{url}/sap-job-scheduling/uaa-cert",
            },
        }
        conns["sap_job_scheduling_x509"] = {"conn_type": "sap_job_scheduling", "extra": {"service_key": x509}}
        wrong_cpi = json.loads(json.dumps(cpi))
        wrong_cpi["service_key"]["oauth"]["clientsecret"] = self.cpi_wrong
        wrong_cpi["runtime_service_key"]["oauth"]["clientsecret"] = self.cpi_wrong
        conns["sap_cloud_integration_wrong"] = {"conn_type": "sap_cloud_integration", "extra": wrong_cpi}
        conns["sap_cloud_integration_basic"] = {
            "conn_type": "sap_cloud_integration",
            "host": f"{url}/sap-cloud-integration",
            "login": "cpi-user",
            "password": self.cpi_basic,
        }
        conns["sap_data_intelligence_wrong"] = variant("sap_data_intelligence_default", password=self.di_wrong)
        conns["sap_analytics_cloud_wrong"] = variant("sap_analytics_cloud_default", password=self.sac_wrong)
        return conns


def _dags_folder(target: Path) -> Path:
    """The example DAGs (with their resources) and the failure-path DAGs, in one folder."""
    target.mkdir()
    for name in EXAMPLES:
        shutil.copy(DAGS / f"{name}.py", target)
    if (DAGS / "resources").is_dir():
        shutil.copytree(DAGS / "resources", target / "resources")
    for path in (HERE / "secrets_dags").glob("secrets_*.py"):
        shutil.copy(path, target)
    return target


def _configure_failures(stack: AirflowStack) -> None:
    """Remote jobs that fail, each on an object only the failure-path DAG uses."""
    stack.sandbox("/_sandbox/anaplan/config", {"action_id": "112000000002", "outcome": "fail", "failed_rows": 2})
    stack.sandbox("/_sandbox/sap_job_scheduling/config", {"job_id": 1, "outcome": "error"})
    stack.sandbox("/_sandbox/sap_cloud_integration/deploy_config", {"artifact_id": "Orders_Import", "runtime": "ERROR"})
    stack.sandbox(
        "/_sandbox/sap_data_intelligence/graphs/com.example.secrets.failing",
        {"outcome": "dead", "message": "injected failure", "duration": 2},
    )


#: What is kept only while a task is deferred: trigger rows (deleted once fired) and the resume kwargs.
SNAPSHOTS = {
    "trigger": "select * from trigger",
    "task_instance (deferred)": "select * from task_instance where next_kwargs is not null",
}


class Snapshots:
    """Rows copied while the DAGs run, so that what Airflow deletes later is searched too."""

    def __init__(self, stack: AirflowStack) -> None:
        self.stack = stack
        self.rows: dict[str, set[tuple[Any, ...]]] = {name: set() for name in SNAPSHOTS}
        self.columns: dict[str, list[str]] = {}

    def take(self) -> None:
        for name, sql in SNAPSHOTS.items():
            table = sql.split(" from ")[1].split()[0]
            if name not in self.columns:
                columns = [row[1] for row in self.stack.query(f'pragma table_info("{table}")')]
                if columns:
                    self.columns[name] = columns
            self.rows[name].update(tuple(row) for row in self.stack.query(sql))

    def wait_finished(self, deadline: float, expected: int) -> None:
        """:meth:`AirflowStack.wait_finished`, taking a snapshot every second meanwhile."""
        while True:
            self.take()
            states = self.stack.run_states()
            if len(states) >= expected and all(state in ("success", "failed") for state in states.values()):
                return
            self.stack.procs.check_alive()
            assert time.time() < deadline, f"runs not finished by the deadline: {states}"
            time.sleep(1)


def _task_states(stack: AirflowStack, dag_id: str) -> dict[str, str]:
    return {row[2]: row[3] for row in stack.task_instances(dag_id)}


def test_no_secret_in_logs_or_metadata_database(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    secrets = Secrets()
    wanted = needles(secrets.set)
    credentials_file = tmp_path / "sandbox-credentials.json"
    credentials_file.write_text(json.dumps(secrets.sandbox_credentials()))
    # The scanner must find what it looks for: in the file that hands the secrets to the sandbox.
    assert search(credentials_file.read_bytes(), wanted)

    fernet_key = Fernet.generate_key().decode()
    tmp = tmp_path / "stack" / "tmp"
    tmp.mkdir(parents=True)
    dags = _dags_folder(tmp_path / "dags")
    stack = AirflowStack(
        tmp_path / "stack",
        sandbox_args=["--time-scale", "0.1", "--credentials", str(credentials_file)],
        connections=secrets.connections,
        # Temporary files (e.g. client certificate keys written for TLS) land under the searched directory.
        env={"AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__FERNET_KEY": fernet_key, "TMPDIR": str(tmp)},
    )
    started = time.time()
    deadline = started + RUN_SECONDS
    snapshots = Snapshots(stack)
    with stack:
        _configure_failures(stack)
        first = [*EXAMPLES, "secrets_paths"]
        stack.wait_parsed([*first, *FAULT_DAGS], deadline)
        for dag_id in first:
            stack.trigger(dag_id)
        snapshots.wait_finished(deadline, len(first))
        for dag_id, fault in FAULT_DAGS.items():
            stack.sandbox(
                "/_sandbox/faults", [{"method": "*", "path_regex": p, "times": -1, **fault} for p in API_PATHS]
            )
            stack.trigger(dag_id)
            snapshots.wait_finished(deadline, len(first) + list(FAULT_DAGS).index(dag_id) + 1)
            stack.sandbox("/_sandbox/faults", method="DELETE")
        runs = stack.run_states()
        states = {dag_id: _task_states(stack, dag_id) for dag_id in [*first, *FAULT_DAGS]}
        stats = stack.sandbox("/_sandbox/stats?log=0")
    elapsed = time.time() - started

    counts: Counter[str] = Counter()
    findings = scan_files([stack.root], wanted, exclude=[credentials_file])
    findings += scan_sqlite(stack.db, wanted, fernet_key, counts)
    decrypt = fernet_decrypter(fernet_key)
    for name, rows in snapshots.rows.items():
        findings += scan_rows(f"{name} snapshot", snapshots.columns.get(name, []), rows, wanted, decrypt, counts)
    assert not findings, f"{len(findings)} secret occurrence(s):\n" + "\n".join(findings[:200])

    # The paths the search covers were really taken.
    failed_examples = {key: state for key, state in runs.items() if key[0] in EXAMPLES and state != "success"}
    assert not failed_examples, f"example DAG runs did not succeed: {failed_examples}\n{states}"
    from tests.system.secrets_dags.secrets_failure_paths import EXPECTED

    assert states["secrets_paths"] == EXPECTED, states["secrets_paths"]
    for dag_id in FAULT_DAGS:
        assert set(states[dag_id].values()) == {"failed"} and len(states[dag_id]) == 5, (dag_id, states[dag_id])
    expected_statuses = ["401"] + (["500"] if "secrets_http_500" in FAULT_DAGS else [])
    assert all(stats["statuses"].get(status) for status in expected_statuses), stats["statuses"]
    # The deferred waits' trigger rows (deleted once fired) were caught while they existed.
    assert snapshots.rows["trigger"], "no trigger row was seen while the DAGs ran"
    print(
        f"secrets test: {len(wanted)} needles, {len(runs)} DAG runs, {len(snapshots.rows['trigger'])} trigger rows "
        f"seen, values searched {dict(counts)}, {elapsed:.0f} s"
    )
