"""The example Python client (client/python/glvq_client.py) against a real
coordinator and worker (started by run_python_client_interop.sh): generates
stubs with grpcio-tools, submits the stories260K fixture job, watches it to
completion and checks the result; then submits it over mTLS with a bearer
token to a secured coordinator (--tls-coordinator, PKI in --pki) and checks
the refusals: no token, wrong CA, plaintext off loopback.
Last line: "interop: N passed, N failed".
"""
import argparse
import json
import os
import subprocess
import sys

from checker import Checker

EXPECTED_QUANTIZED = 35  # stories260K: 5 layers x 7 linear weights

JOB_YAML = """\
apiVersion: glvq.io/v1
kind: QuantizationJob
metadata:
  name: python-client-interop
spec:
  model:
    path: {model}
  quantizer:
    method: rtn
    bits: 4
    groupSize: 32
    seed: 1
  tensors:
    include: ["*"]
    exclude: ["*embed*", "*lm_head*"]
  output:
    path: out/{output}
  workers:
    backend: cpu
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coordinator", required=True)
    ap.add_argument("--tls-coordinator", required=True, help="the mTLS + tokens coordinator")
    ap.add_argument("--pki", required=True,
                    help="ca.pem, other-ca.pem, client.{pem,key}, client.tokens")
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()

    stubs = os.path.join(args.work, "stubs")
    job_file = os.path.join(args.work, "job.yaml")
    out_dir = os.path.join(args.work, "out", "stories260K-rtn4")
    tls_job_file = os.path.join(args.work, "job-tls.yaml")

    def pki(name):
        return os.path.join(args.pki, name)

    with open(pki("client.tokens"), encoding="utf-8") as f:
        client_token = f.read().split()[-1]  # after the comment line
    client_dir = os.path.join(args.source_dir, "client", "python")
    state = {}
    c = Checker(announce=True)

    def generate_stubs():
        # What client/python/README.md documents, run in-process.
        from grpc_tools import protoc
        import glob

        os.makedirs(stubs)
        proto_dir = os.path.join(args.source_dir, "proto")
        files = sorted(glob.glob(os.path.join(proto_dir, "glvq", "v1", "*.proto")))
        assert files, f"no .proto files under {proto_dir}"
        wkt = os.path.join(os.path.dirname(protoc.__file__), "_proto")
        rc = protoc.main(["grpc_tools.protoc", f"-I{proto_dir}", f"-I{wkt}",
                          f"--python_out={stubs}", f"--grpc_python_out={stubs}", *files])
        assert rc == 0, f"grpc_tools.protoc exited {rc}"
        assert os.path.exists(os.path.join(stubs, "glvq", "v1", "services_pb2_grpc.py"))

    def import_client():
        sys.path.insert(0, client_dir)
        import glvq_client

        glvq_client.load_stubs(stubs)
        state["client"] = glvq_client

    def parse_job():
        with open(job_file, "w", encoding="utf-8") as f:
            f.write(JOB_YAML.format(model=os.path.join(args.fixtures, "stories260K"),
                                    output="stories260K-rtn4"))
        client = state["client"]
        job = client.load_job(job_file)
        assert job.spec.quantizer.method == client.job_pb2.METHOD_RTN, job.spec.quantizer
        assert job.spec.quantizer.group_size == 32
        assert job.spec.workers.backend == client.job_pb2.BACKEND_CPU
        assert job.spec.output.path == out_dir, job.spec.output.path
        assert list(job.spec.tensors.exclude) == ["*embed*", "*lm_head*"]

    def run_cli(coordinator, *argv, timeout=30):
        cmd = [sys.executable, os.path.join(client_dir, "glvq_client.py"),
               "--stubs", stubs, "--coordinator", coordinator, *argv]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert client_token not in r.stdout + r.stderr, "the token was printed"
        return r

    def submit_and_watch_cli():
        # The CLI as a user runs it: submit --wait, exit 0 on SUCCEEDED.
        r = run_cli(args.coordinator, "submit", job_file, "--wait", timeout=540)
        sys.stdout.write(r.stdout)
        tail = "\n".join(r.stderr.splitlines()[-15:])
        print(tail)
        assert r.returncode == 0, f"glvq_client.py exited {r.returncode}"
        assert "SUCCEEDED" in r.stdout, r.stdout
        ids = [l.split()[-1] for l in r.stdout.splitlines() if l.startswith("submitted:")]
        assert len(ids) == 1, r.stdout
        state["job_id"] = ids[0]
        assert "[" in r.stderr and "SUCCEEDED" in r.stderr, "no WatchJob progress printed"

    def final_job_via_api():
        client = state["client"]
        stub = client.connect(args.coordinator)
        job = stub.GetJob(client.services_pb2.GetJobRequest(job_id=state["job_id"]), timeout=30)
        assert job.status.state == client.job_pb2.JOB_STATE_SUCCEEDED, job.status
        assert job.status.plan.tensors_quantized == EXPECTED_QUANTIZED, job.status.plan
        assert job.status.progress.tasks_done == job.status.progress.tasks_total > 0
        # A second watch of a finished job: the stream ends after its current state.
        events = list(stub.WatchJob(client.services_pb2.WatchJobRequest(job_id=state["job_id"]),
                                    timeout=30))
        assert events and events[-1].state == client.job_pb2.JOB_STATE_SUCCEEDED
        listed = stub.ListJobs(client.services_pb2.ListJobsRequest(), timeout=30)
        assert state["job_id"] in [j.id for j in listed.jobs]

    def manifest():
        path = os.path.join(out_dir, "glvq_manifest.json")
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
        tensors = m["tensors"]  # docs/format.md §7: one entry per tensor
        quantized = [t["name"] for t in tensors if t["quantized"]]
        assert len(quantized) == EXPECTED_QUANTIZED, \
            f"{len(quantized)} quantized tensors in the manifest, expected {EXPECTED_QUANTIZED}"
        assert not any("embed" in n or "lm_head" in n for n in quantized), quantized

    def inspect():
        r = subprocess.run([os.path.join(args.bin_dir, "glvq"), "inspect", "--json", out_dir],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"glvq inspect exited {r.returncode}: {r.stderr}"
        info = json.loads(r.stdout)
        assert info.get("format") == "glvq-packed", f"format {info.get('format')!r}"

    def tls_options(ca="ca.pem"):
        return ["--tls-ca", pki(ca), "--tls-cert", pki("client.pem"), "--tls-key",
                pki("client.key")]

    def submit_tls():
        # One more job, on the secured coordinator; the token file leads
        # with a comment line, which the client skips.
        with open(tls_job_file, "w", encoding="utf-8") as f:
            f.write(JOB_YAML.format(model=os.path.join(args.fixtures, "stories260K"),
                                    output="stories260K-rtn4-tls"))
        r = run_cli(args.tls_coordinator, *tls_options(), "--token-file", pki("client.tokens"),
                    "submit", tls_job_file, "--wait", timeout=540)
        sys.stdout.write(r.stdout)
        print("\n".join(r.stderr.splitlines()[-5:]))
        assert r.returncode == 0, f"glvq_client.py exited {r.returncode}"
        assert "SUCCEEDED" in r.stdout, r.stdout
        assert "SUCCEEDED" in r.stderr, "no WatchJob progress printed"

    def tls_library_calls():
        # The library call behind the options: unary and streaming calls
        # both carry the token.
        client = state["client"]
        stub = client.connect(args.tls_coordinator, tls_ca=pki("ca.pem"),
                              tls_cert=pki("client.pem"), tls_key=pki("client.key"),
                              token_file=pki("client.tokens"))
        jobs = stub.ListJobs(client.services_pb2.ListJobsRequest(), timeout=30).jobs
        assert len(jobs) == 1 and jobs[0].status.state == client.job_pb2.JOB_STATE_SUCCEEDED
        events = list(stub.WatchJob(client.services_pb2.WatchJobRequest(job_id=jobs[0].id),
                                    timeout=30))
        assert events and events[-1].state == client.job_pb2.JOB_STATE_SUCCEEDED

    def refused(coordinator, options, code, exit_code):
        r = run_cli(coordinator, *options, "submit", tls_job_file)
        assert r.returncode == exit_code, f"exit {r.returncode}, expected {exit_code}: {r.stderr}"
        assert code in r.stderr, r.stderr
        return r

    def no_token():
        refused(args.tls_coordinator, tls_options(), "UNAUTHENTICATED", 1)

    def wrong_ca():
        refused(args.tls_coordinator,
                tls_options("other-ca.pem") + ["--token-file", pki("client.tokens")],
                "UNAVAILABLE", 4)

    def plaintext_off_loopback():
        # Refused before any call, so no name lookup happens.
        r = refused("glvq.example.org:7070", [], "FAILED_PRECONDITION", 1)
        assert "--insecure" in r.stderr, r.stderr

    c.check("stubs generated by grpc_tools.protoc", generate_stubs)
    c.check("client imports the stubs", import_client)
    c.check("job YAML parsed into a QuantizationJob", parse_job)
    c.check("submit --wait through the Python client succeeds", submit_and_watch_cli)
    c.check("GetJob/WatchJob/ListJobs report the finished job", final_job_via_api)
    c.check(f"manifest lists {EXPECTED_QUANTIZED} quantized tensors", manifest)
    c.check("glvq inspect --json reads the output as glvq-packed", inspect)
    c.check("submit --wait over mTLS with a bearer token succeeds", submit_tls)
    c.check("connect(): ListJobs and WatchJob over mTLS carry the token", tls_library_calls)
    c.check("no token: UNAUTHENTICATED, exit 1", no_token)
    c.check("wrong CA: UNAVAILABLE, exit 4", wrong_ca)
    c.check("plaintext to a non-loopback address: refused, exit 1", plaintext_off_loopback)
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0



if __name__ == "__main__":
    sys.exit(main())
