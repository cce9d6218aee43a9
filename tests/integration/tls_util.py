"""Certificates for the TLS tests, made fresh per test class with
scripts/gen-certs.sh and the openssl CLI (nothing secret is in git)."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

from harness import ROOT, scaled

GEN_CERTS = os.path.join(ROOT, "scripts", "gen-certs.sh")


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class CertDir:
    """A CA with N node certificates in a temp dir, plus helpers for
    certificates the tests need to be wrong in one way."""

    def __init__(self, nodes=3):
        self.dir = tempfile.mkdtemp(prefix="rampart-certs-")
        run("sh", GEN_CERTS, self.dir, str(nodes))

    def path(self, name):
        return os.path.join(self.dir, name)

    def node(self, i):
        return self.path(f"node_{i}.pem"), self.path(f"node_{i}.key")

    @property
    def ca(self):
        return self.path("ca.pem")

    def issue(self, name, sans, ca_cert=None, ca_key=None, days=365, start_offset_days=0, key=None):
        """A certificate `name`.pem for `sans` (DNS names), signed by the CA
        (or another one); `start_offset_days` < 0 backdates it so that with
        days=1 it is already expired. Reuses `key` when given."""
        ca_cert = ca_cert or self.ca
        ca_key = ca_key or self.path("ca.key")
        key_path = key or self.path(name + ".key")
        if key is None:
            run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key_path)
            os.chmod(key_path, 0o600)
        csr = self.path(name + ".csr")
        run("openssl", "req", "-new", "-key", key_path, "-subj", f"/CN={sans[0]}", "-out", csr)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n")
        cert = self.path(name + ".pem")
        if start_offset_days:
            # openssl x509 -req has no start date option: use `openssl ca`.
            self._ca_sign(csr, cert, ext, ca_cert, ca_key, days, start_offset_days)
        else:
            run("openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                "-CAserial", self.path(name + ".srl"), "-days", str(days), "-sha256", "-extfile", ext, "-out", cert)
        return cert, key_path

    def _ca_sign(self, csr, cert, ext, ca_cert, ca_key, days, start_offset_days):
        import datetime
        db = tempfile.mkdtemp(dir=self.dir)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as f:
            f.write("1000\n")
        conf = os.path.join(db, "ca.cnf")
        with open(conf, "w") as f:
            f.write(f"[ca]\ndefault_ca=d\n[d]\ndatabase={db}/index.txt\nserial={db}/serial\n"
                    f"new_certs_dir={db}\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n")
        start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=start_offset_days)
        end = start + datetime.timedelta(days=days)
        fmt = "%Y%m%d%H%M%SZ"
        run("openssl", "ca", "-batch", "-config", conf, "-cert", ca_cert, "-keyfile", ca_key, "-in", csr,
            "-out", cert, "-extfile", ext, "-startdate", start.strftime(fmt), "-enddate", end.strftime(fmt),
            "-notext")

    def other_ca(self, name="other"):
        key = self.path(name + "-ca.key")
        cert = self.path(name + "-ca.pem")
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        run("openssl", "req", "-x509", "-new", "-key", key, "-subj", f"/CN={name} CA", "-days", "30",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            "-out", cert)
        return cert, key

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def cert_sha256(pem_path):
    der = run("openssl", "x509", "-in", pem_path, "-outform", "DER").stdout
    return hashlib.sha256(der).hexdigest()


def spki_sha256(pem_path):
    pub = run("openssl", "x509", "-in", pem_path, "-pubkey", "-noout").stdout
    der = run("openssl", "pkey", "-pubin", "-outform", "DER", input=pub).stdout
    return hashlib.sha256(der).hexdigest()


def client_context(ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the tests connect by IP; names are checked by the server side
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_connect(host, port, ctx, timeout=5):
    raw = socket.create_connection((host, port), timeout=scaled(timeout))
    return ctx.wrap_socket(raw, server_hostname="localhost")


def https_get(host, port, ctx, path="/health", headers=None, timeout=5):
    """One GET over a fresh TLS connection: (status, headers, body)."""
    with tls_connect(host, port, ctx, timeout) as s:
        lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(), body
