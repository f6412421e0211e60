#!/usr/bin/env python3
"""A Python client for mmx-coord, using Debian's python3-grpcio and stubs generated from
proto/mmx/v1/inference.proto (the build writes them to build/python; see generate_stubs.sh).

Examples:
  python3 clients/python/mmx_client.py --server 127.0.0.1:7070 generate "Once upon a time" --max-tokens 32
  python3 clients/python/mmx_client.py --server 127.0.0.1:7070 chat "Hello!"
  python3 clients/python/mmx_client.py --server 127.0.0.1:7070 job "first prompt" "second prompt"
  python3 clients/python/mmx_client.py --server 127.0.0.1:7070 status

As a library:
  client = MmxClient("127.0.0.1:7070")
  for delta in client.generate("Once upon a time", max_tokens=32):
      print(delta.text, end="", flush=True)
"""
import argparse
import json
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("MMX_PY_STUBS", os.path.join(_HERE, "..", "..", "build", "python")))

import grpc  # noqa: E402  (python3-grpcio)
from mmx.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402


def _read(path):
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SystemExit(f"mmx_client: cannot read {path}: {e.strerror}")


class MmxClient:
    """tls_ca: verify the coordinator against this PEM CA (TLS on); tls_cert/tls_key: mutual TLS;
    api_key (or MMX_API_KEY): sent as `authorization: Bearer KEY` with every call."""

    def __init__(self, server, timeout_s=600, tls_ca=None, tls_cert=None, tls_key=None, api_key=None):
        api_key = api_key or os.environ.get("MMX_API_KEY")
        self.metadata = [("authorization", f"Bearer {api_key}")] if api_key else []
        if tls_ca or tls_cert or tls_key:
            if bool(tls_cert) != bool(tls_key):
                raise SystemExit("mmx_client: a client certificate needs both --tls-cert and --tls-key")
            credentials = grpc.ssl_channel_credentials(root_certificates=_read(tls_ca), private_key=_read(tls_key),
                                                       certificate_chain=_read(tls_cert))
            self.channel = grpc.secure_channel(server, credentials)
        else:
            self.channel = grpc.insecure_channel(server)
        self.stub = inference_pb2_grpc.InferenceStub(self.channel)
        self.timeout_s = timeout_s

    @staticmethod
    def _sampling(max_tokens, temperature=0.0, top_p=None, top_k=0, seed=0, stop=(), ignore_eos=False):
        s = inference_pb2.SamplingParams(max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                                         seed=seed, stop=list(stop), ignore_eos=ignore_eos)
        if top_p is not None:
            s.top_p = top_p
        return s

    def request(self, prompt=None, messages=None, prompt_ids=None, **sampling):
        r = inference_pb2.GenerateRequest(sampling=self._sampling(**sampling))
        if prompt is not None:
            r.prompt = prompt
        if messages is not None:
            r.messages.extend(inference_pb2.ChatMessage(role=m["role"], content=m["content"]) for m in messages)
        if prompt_ids is not None:
            r.prompt_token_ids.extend(prompt_ids)
        return r

    def generate(self, prompt=None, messages=None, prompt_ids=None, **sampling):
        """Yields GenerateResponse messages: .token_ids, .text, and on the last .finish_reason, .usage."""
        yield from self.stub.Generate(self.request(prompt, messages, prompt_ids, **sampling), timeout=self.timeout_s,
                                      metadata=self.metadata)

    def submit_job(self, requests, idempotency_key=""):
        return self.stub.SubmitJob(inference_pb2.SubmitJobRequest(requests=requests, idempotency_key=idempotency_key),
                                   timeout=30, metadata=self.metadata)

    def get_job(self, job_id, omit_results=False):
        """The job with all its ended requests' results, fetched a page at a time."""
        job = self.stub.GetJob(inference_pb2.GetJobRequest(job_id=job_id, omit_results=omit_results), timeout=30,
                               metadata=self.metadata)
        token = job.next_page_token
        while token:
            page = self.stub.GetJob(inference_pb2.GetJobRequest(job_id=job_id, page_token=token), timeout=30,
                                    metadata=self.metadata)
            job.results.extend(page.results)
            token = page.next_page_token
        job.ClearField("next_page_token")
        return job

    def stream_job_results(self, job_id, from_index=0, follow=False):
        """Yields JobResult messages in index order from from_index; with follow, until the job ends.
        After a broken stream, call again with from_index = the last index received + 1."""
        yield from self.stub.StreamJobResults(
            inference_pb2.StreamJobResultsRequest(job_id=job_id, from_index=from_index, follow=follow),
            metadata=self.metadata)

    def wait_job(self, job_id, poll_s=0.2):
        while True:
            job = self.get_job(job_id, omit_results=True)
            if job.state not in (inference_pb2.JOB_STATE_QUEUED, inference_pb2.JOB_STATE_RUNNING):
                return self.get_job(job_id)
            time.sleep(poll_s)

    def status(self):
        return self.stub.GetClusterStatus(inference_pb2.GetClusterStatusRequest(), timeout=10, metadata=self.metadata)


def main():
    parser = argparse.ArgumentParser(description="mmx-coord Python client example")
    parser.add_argument("--server", default="127.0.0.1:7070")
    parser.add_argument("--tls-ca", help="connect over TLS, verifying the coordinator against this PEM CA")
    parser.add_argument("--tls-cert", help="present this PEM certificate (mutual TLS)")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    parser.add_argument("--api-key", help="the API key to send (default: the MMX_API_KEY environment variable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per result")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("prompt")
    c = sub.add_parser("chat")
    c.add_argument("message")
    for p in (g, c):
        p.add_argument("--max-tokens", type=int, default=32)
        p.add_argument("--temperature", type=float, default=0.0)
        p.add_argument("--stop", action="append", default=[])
        p.add_argument("--ignore-eos", action="store_true")
    j = sub.add_parser("job")
    j.add_argument("prompts", nargs="+")
    j.add_argument("--max-tokens", type=int, default=16)
    sub.add_parser("status")
    args = parser.parse_args()
    client = MmxClient(args.server, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key,
                       api_key=args.api_key)
    try:
        if args.command in ("generate", "chat"):
            kwargs = dict(max_tokens=args.max_tokens, temperature=args.temperature, stop=args.stop,
                          ignore_eos=args.ignore_eos)
            if args.command == "generate":
                stream = client.generate(prompt=args.prompt, **kwargs)
            else:
                stream = client.generate(messages=[{"role": "user", "content": args.message}], **kwargs)
            ids, text, last = [], "", None
            for r in stream:
                ids.extend(r.token_ids)
                text += r.text
                last = r
                if not args.json:
                    print(r.text, end="", flush=True)
            if args.json:
                print(json.dumps({"ids": ids, "text": text, "finish_reason": last.finish_reason,
                                  "usage": {"prompt_tokens": last.usage.prompt_tokens,
                                            "completion_tokens": last.usage.completion_tokens}}))
            else:
                print(f"\n[{last.finish_reason}; {last.usage.completion_tokens} tokens]", file=sys.stderr)
        elif args.command == "job":
            requests = [client.request(prompt=p, max_tokens=args.max_tokens, ignore_eos=True) for p in args.prompts]
            job_id = client.submit_job(requests).job_id
            streamed = [r.index for r in client.stream_job_results(job_id, follow=True)]
            job = client.wait_job(job_id)
            results = [{"index": r.index, "ids": list(r.token_ids), "text": r.text,
                        "finish_reason": r.finish_reason, "error": r.error} for r in job.results]
            print(json.dumps({"job_id": job.job_id, "state": inference_pb2.JobState.Name(job.state),
                              "results": results, "streamed": streamed}))
        else:
            s = client.status()
            print(json.dumps({"ready": s.ready, "workers": [w.name for w in s.workers],
                              "requests_total": s.stats.requests_total}))
    except grpc.RpcError as e:
        print(f"mmx_client: error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
