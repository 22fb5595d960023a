#!/usr/bin/env python3
"""TLS and mutual TLS on `mintgate serve`, against a real redis-server on
loopback. A CA, a server certificate (IP SAN 127.0.0.1) and two client
certificates (URI SANs spiffe://corp/ci/deployer, on the allow-list, and
spiffe://corp/evil, not on it) are made with the openssl CLI at test time.

- Allowed client: a request line gets its decision; so does HTTPS POST
  /v1/decide.
- Unlisted client (both ports), client without a certificate, plaintext
  client (both ports): no decision, the connection is closed; GET /metrics
  counts each exactly once, as refused or as a failed handshake.
- Bad TLS configuration (missing file, key of another certificate,
  client_auth=require without a CA) stops serve with the key's name.

Usage: test_tls_e2e.py /path/to/mintgate
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from mgtest import Redis, check, failures, free_port  # noqa: F401

MINTGATE = sys.argv[1]

POLICY = """\
version: 1
defaults:
  thresholds: {narrow: 25, step_up: 60, deny: 80}
  max_ttl: 1h
  degraded: fail_closed
policies:
  - name: deploy
    client: "gh-actions"
    resource: "api://deploy"
    allowed_scopes: ["deploy:read", "deploy:write"]
    high_impact_scopes: ["deploy:write"]
    max_ttl: 30m
    grant_types: [client_credentials, token_exchange]
    degraded: fail_narrow
    minimum_scopes: ["deploy:read"]
    degraded_ttl: 5m
"""

ALLOWED = "spiffe://corp/ci/deployer"
EVIL = "spiffe://corp/evil"


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)


def make_pki(d):
    """CA, server and client certificates in d; returns their paths."""
    p = {n: os.path.join(d, n) for n in
         ("ca.key", "ca.pem", "srv.key", "srv.pem", "ok.key", "ok.pem",
          "evil.key", "evil.pem", "other.key")}
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", p["ca.key"],
            "-out", p["ca.pem"], "-days", "2", "-subj", "/CN=mintgate test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(name, cn, ext):
        key, pem = p[name + ".key"], p[name + ".pem"]
        csr = os.path.join(d, name + ".csr")
        extf = os.path.join(d, name + ".ext")
        with open(extf, "w") as fp:
            fp.write(ext)
        openssl("req", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", csr, "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", csr, "-CA", p["ca.pem"], "-CAkey",
                p["ca.key"], "-CAcreateserial", "-out", pem, "-days", "2",
                "-extfile", extf)

    leaf("srv", "mintgate", "subjectAltName=IP:127.0.0.1\n"
         "extendedKeyUsage=serverAuth\n")
    leaf("ok", "deployer", "subjectAltName=URI:%s\n"
         "extendedKeyUsage=clientAuth\n" % ALLOWED)
    leaf("evil", "evil", "subjectAltName=URI:%s\n"
         "extendedKeyUsage=clientAuth\n" % EVIL)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-out", p["other.key"])
    return p


def client_ctx(pki, who):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki["ca.pem"])
    if who:
        ctx.load_cert_chain(pki[who + ".pem"], pki[who + ".key"])
    return ctx


def request(rid):
    return {"id": rid, "identity": ALLOWED, "client_id": "gh-actions",
            "resource": "api://deploy", "scopes": ["deploy:read"],
            "grant_type": "client_credentials", "ttl": 900,
            "context": {"source_ip": "203.0.113.7"}}


def recv_line(sock):
    """A response line, or None if the peer closed (or broke) the
    connection first. Bounded by the socket's timeout."""
    buf = b""
    try:
        while b"\n" not in buf and len(buf) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
    except (ssl.SSLError, ConnectionError, OSError):
        return None
    return buf.split(b"\n", 1)[0].decode()


def ask_tls(addr, pki, who, rid):
    """Send one request line over TLS as who (None: no certificate).
    Returns (handshake_ok, response line or None)."""
    host, port = addr.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=10)
    try:
        try:
            sock = client_ctx(pki, who).wrap_socket(
                raw, server_hostname="127.0.0.1")
        except (ssl.SSLError, ConnectionError, OSError):
            return False, None
        try:
            sock.sendall((json.dumps(request(rid)) + "\n").encode())
        except (ssl.SSLError, ConnectionError, OSError):
            return True, None
        return True, recv_line(sock)
    finally:
        raw.close()


def ask_plain(addr, rid):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        try:
            sock.sendall((json.dumps(request(rid)) + "\n").encode())
        except OSError:
            return None
        line = recv_line(sock)
        return line if line and "decision" in line else None
    finally:
        sock.close()


def https(addr, pki, who, method, path, body=None):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), timeout=10,
                                       context=client_ctx(pki, who))
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def serve_args(policy, redis, audit_log, tls):
    args = [MINTGATE, "serve", "--listen", "127.0.0.1:0", "--http",
            "127.0.0.1:0", "--policy", policy,
            "--redis", "127.0.0.1:%d" % redis.port,
            "--set", "audit.log=" + audit_log, "--log-level", "warn"]
    for k, v in tls.items():
        args += ["--set", "serve.tls.%s=%s" % (k, v)]
    return args


def bad_config(policy, redis, audit_log, tls, key):
    """serve refuses tls and names key."""
    p = subprocess.run(serve_args(policy, redis, audit_log, tls),
                       capture_output=True, text=True, timeout=30)
    check(p.returncode != 0 and key in p.stderr,
          "bad TLS config refused naming %s (rc=%s: %s)" % (
              key, p.returncode, p.stderr.strip()[-300:]))


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None


def main():
    tmp = tempfile.mkdtemp(prefix="mg-tls-e2e-")
    pki = make_pki(tmp)
    redis = Redis(tmp)
    redis.start()
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as fp:
        fp.write(POLICY)
    audit_log = os.path.join(tmp, "audit.log")
    tls = {"cert": pki["srv.pem"], "key": pki["srv.key"],
           "ca": pki["ca.pem"], "client_auth": "require", "allow": ALLOWED}
    serve = subprocess.Popen(serve_args(policy, redis, audit_log, tls),
                             stdout=subprocess.PIPE, text=True)
    try:
        line = serve.stdout.readline().strip()
        check(line.startswith("listen="), "serve prints its addresses")
        addr = line.split()[0].split("=", 1)[1]
        http_addr = line.split()[1].split("=", 1)[1]

        ok, resp = ask_tls(addr, pki, "ok", "tls-ok")
        check(ok and resp and '"decision"' in resp,
              "allowed client certificate gets a decision: %s" % resp)
        ok, resp = ask_tls(addr, pki, "evil", "tls-evil")
        check(not resp, "unlisted client certificate: no decision (%s)" %
              resp)
        ok, resp = ask_tls(addr, pki, None, "tls-nocert")
        check(not resp, "no client certificate: no decision (%s)" % resp)
        resp = ask_plain(addr, "plain")
        check(not resp, "plaintext client: no decision (%s)" % resp)
        # The allowed client still served after the refusals.
        ok, resp = ask_tls(addr, pki, "ok", "tls-ok-2")
        check(ok and resp and '"decision"' in resp,
              "allowed client served after refusals: %s" % resp)

        status, body = https(http_addr, pki, "ok", "POST", "/v1/decide",
                             json.dumps(request("https-ok")))
        check(status == 200 and '"decision"' in body,
              "HTTPS POST /v1/decide with the allowed certificate: %s %s" %
              (status, body))
        try:
            status, body = https(http_addr, pki, "evil", "POST",
                                 "/v1/decide",
                                 json.dumps(request("https-evil")))
        except (ssl.SSLError, ConnectionError, OSError,
                http.client.HTTPException):
            status, body = None, ""
        check('"decision"' not in body,
              "HTTPS with the unlisted certificate: no decision (%s)" %
              status)

        host, port = http_addr.rsplit(":", 1)
        plain = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            plain.request("POST", "/v1/decide",
                          body=json.dumps(request("http-plain")))
            body = plain.getresponse().read().decode()
        except (ConnectionError, OSError, http.client.HTTPException):
            body = ""
        finally:
            plain.close()
        check('"decision"' not in body, "plaintext HTTP: no decision")

        # Refused: the unlisted certificate on each port. Failed
        # handshakes: no certificate, plaintext line, plaintext HTTP. The
        # server may free the last one a moment after the client gave up.
        for _ in range(50):
            status, body = https(http_addr, pki, "ok", "GET", "/metrics")
            refused = metric(body, "mintgate_tls_refused_total")
            failed = metric(body, "mintgate_tls_handshake_failed_total")
            if (refused, failed) == (2, 3):
                break
            time.sleep(0.1)
        check(status == 200 and refused == 2,
              "metrics count refused identities (%s)" % refused)
        check(failed == 3, "metrics count failed handshakes (%s)" % failed)
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    check(serve.returncode == 0, "serve exits 0 (%s)" % serve.returncode)

    try:
        bad_config(policy, redis, audit_log,
                   dict(tls, cert=os.path.join(tmp, "missing.pem")),
                   "serve.tls.cert")
        bad_config(policy, redis, audit_log, dict(tls, key=pki["other.key"]),
                   "serve.tls.key")
        bad = dict(tls)
        del bad["ca"]
        bad_config(policy, redis, audit_log, bad, "serve.tls.ca")
        bad_config(policy, redis, audit_log, {"key": pki["srv.key"]},
                   "serve.tls.cert")
    finally:
        redis.stop()

    if failures:
        print("test_tls_e2e: %d failure(s)" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("test_tls_e2e: all checks passed")


if __name__ == "__main__":
    main()
