"""`seqbeam run` end to end on gs:// paths, against a real GCS JSON API: the emulator on loopback.

Every Cloud Storage client the jobs use is pointed at one ``gcp-storage-emulator``:

- Beam's ``GCSFileSystem`` (every ``FileSystems`` read and write: the Beam jobs, markers,
  metrics, the report) builds a ``google.cloud.storage.Client``, which talks to
  ``STORAGE_EMULATOR_HOST``. With no credentials found Beam makes an anonymous client; the
  fixture says "no credentials" up front, since Beam would otherwise retry
  ``google.auth.default()`` for ~20 s before settling on that anonymous client.
- TensorFlow's own GCS filesystem (``tf.io.gfile``, ``TFRecordDataset``, ``BackupAndRestore``,
  TensorBoard, ``tf.saved_model.save/load``) has no emulator setting: its endpoints are fixed
  (``https://www.googleapis.com/storage/v1/``, ``.../upload/storage/v1/``,
  ``https://storage.googleapis.com/`` for reads). Its libcurl honours ``https_proxy`` and
  ``CURL_CA_BUNDLE``, so the emulator process also runs a loopback HTTPS proxy that answers
  ``CONNECT`` with a certificate from a throw-away CA and relays the requests to the
  emulator. ``NO_GCE_CHECK=true`` (and no credential files) makes TF send no token.
- gcsfs (the usual way to read the Parquet predictions back, e.g. ``pandas.read_parquet``;
  seqbeam itself does not use it) reads the same ``STORAGE_EMULATOR_HOST``.

The same small emoji config then runs once on gs:// (input corpus uploaded to the bucket) and
once on local disk; the two runs must agree, and a second gs:// run must skip every stage.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import select
import socket
import socketserver
import ssl
import subprocess
import sys
import threading

import pytest

# An emulator process and whole `seqbeam run`s on gs:// and on local disk.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "seqbeam-test"
CORPUS = os.path.join(REPO, "data", "emoji_sentences.csv")
# The CI-sized emoji run of test_run.py, with fewer epochs: the point here is storage.
# The first 2,000 GloVe rows: the vectors' vocabulary goes through gs:// without an 80 MB model.
SMALL = ["train.epochs=2", "preprocess.source_vocab.vectors_rows=2000"]


# ---------------------------------------------------------------------------------------
# The emulator process: gcp-storage-emulator + a TLS-terminating CONNECT proxy for TensorFlow.
# Run as `python tests/test_gcs.py <folder>`; prints "READY <emulator port> <proxy port>".


def _write_certificates(folder: str) -> None:
    """``ca.pem`` (a throw-away CA for CURL_CA_BUNDLE) and ``server.pem`` (*.googleapis.com + key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = {"not_valid_before": now - datetime.timedelta(hours=1), "not_valid_after": now + datetime.timedelta(days=1)}
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seqbeam test CA")])
    ca = (x509.CertificateBuilder(issuer_name=ca_name, subject_name=ca_name, public_key=ca_key.public_key(),
                                  serial_number=x509.random_serial_number(), **valid)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder(issuer_name=ca_name, public_key=key.public_key(),
                                      subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "googleapis.com")]),
                                      serial_number=x509.random_serial_number(), **valid)
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("*.googleapis.com")]), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    with open(os.path.join(folder, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(folder, "server.pem"), "wb") as f:
        f.write(server.public_bytes(pem))
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _read_head(sock) -> tuple[list[bytes], bytes]:
    """The header lines of an HTTP message, and what was read past them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return [], b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.split(b"\r\n"), rest


def _request_head(lines: list[bytes], emulator: bytes) -> tuple[bytes, bool]:
    """TensorFlow's request head as the emulator needs it; True when curl waits for a 100 Continue.

    Host: the emulator's, so that the upload session URL it hands out is its own.
    Content-Length dropped beside ``Transfer-Encoding: chunked`` (curl's uploads send both;
    HTTP says chunked wins, the emulator would read the chunk framing as data).
    """
    names = [line.split(b":", 1)[0].strip().lower() for line in lines]
    chunked = any(n == b"transfer-encoding" and b"chunked" in line.lower() for n, line in zip(names, lines))
    out = [lines[0]]
    for name, line in zip(names[1:], lines[1:]):
        if name == b"host":
            out.append(b"Host: " + emulator)
        elif name == b"expect" or (name == b"content-length" and chunked):
            continue
        else:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n", b"expect" in names


def _relay(client, upstream, emulator_url: bytes) -> None:
    """Both ways until the emulator closes; an upload session's Location points back through the proxy."""
    head, head_done = b"", False
    while True:
        readable = [client] if client.pending() else select.select([client, upstream], [], [], 120)[0]
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                if head and not head_done:
                    client.sendall(head)
                return
            if sock is client:
                upstream.sendall(data)
                continue
            if not head_done:
                head += data
                if b"\r\n\r\n" not in head:
                    continue
                top, rest = head.split(b"\r\n\r\n", 1)
                lines = [line.replace(emulator_url, b"https://www.googleapis.com/")
                         if line.lower().startswith(b"location:") else line for line in top.split(b"\r\n")]
                data, head_done = b"\r\n".join(lines) + b"\r\n\r\n" + rest, True
            client.sendall(data)


def _serve(folder: str) -> None:
    from gcp_storage_emulator.handlers import objects
    from gcp_storage_emulator.server import create_server

    logging.basicConfig(level=logging.ERROR)
    media_upload = objects._media_upload

    def media_upload_of_empty_objects(request, response, storage):
        # The emulator reads an empty body as None; TF creates empty "folder/" objects.
        if request.data is None:
            request._data = b""
        return media_upload(request, response, storage)

    objects._media_upload = media_upload_of_empty_objects
    _write_certificates(folder)
    emulator = create_server("127.0.0.1", 0, in_memory=True)
    emulator.start()
    emulator_port = emulator._api._httpd.server_address[1]
    emulator_host = f"127.0.0.1:{emulator_port}".encode()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(folder, "server.pem"))

    class Tunnel(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stalls on small writes
            lines, _ = _read_head(self.request)
            if not lines or not lines[0].startswith(b"CONNECT "):
                self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with context.wrap_socket(self.request, server_side=True) as client:
                lines, rest = _read_head(client)
                if not lines:
                    return
                head, expects = _request_head(lines, emulator_host)
                if expects:
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                with socket.create_connection(("127.0.0.1", emulator_port)) as upstream:
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    upstream.sendall(head + rest)
                    _relay(client, upstream, b"http://" + emulator_host + b"/")

    class Proxy(socketserver.ThreadingTCPServer):
        daemon_threads = True

    proxy = Proxy(("127.0.0.1", 0), Tunnel)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    print("READY", emulator_port, proxy.server_address[1], flush=True)
    sys.stdin.read()  # until the test closes our stdin
    proxy.shutdown()
    emulator.stop()


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """Starts the emulator and its proxy, points every GCS client at them; yields the emulator URL."""
    folder = tmp_path_factory.mktemp("gcs")
    with open(folder / "emulator.log", "wb") as log:
        server = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(folder)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        if not select.select([server.stdout], [], [], 60)[0]:
            raise RuntimeError(f"the GCS emulator did not start; see {folder / 'emulator.log'}")
        ready = server.stdout.readline().split()
        if not ready or ready[0] != "READY":
            raise RuntimeError(f"the GCS emulator did not start; see {folder / 'emulator.log'}")
        emulator_url = f"http://127.0.0.1:{ready[1]}"
        (folder / "gcloud").mkdir()
        with pytest.MonkeyPatch.context() as mp:
            for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "GOOGLE_APPLICATION_CREDENTIALS"):
                mp.delenv(name, raising=False)
            # google-cloud-storage (Beam's gcsio) and gcsfs: the emulator itself.
            mp.setenv("STORAGE_EMULATOR_HOST", emulator_url)
            # TensorFlow's GCS filesystem: its fixed https endpoints, through the proxy.
            for name in ("https_proxy", "HTTPS_PROXY"):
                mp.setenv(name, f"http://127.0.0.1:{ready[2]}")
            for name in ("no_proxy", "NO_PROXY"):
                mp.setenv(name, "127.0.0.1,localhost")
            mp.setenv("CURL_CA_BUNDLE", str(folder / "ca.pem"))
            # No token: no GCE metadata server, no gcloud credentials file.
            mp.setenv("NO_GCE_CHECK", "true")
            mp.setenv("CLOUDSDK_CONFIG", str(folder / "gcloud"))
            # Beam: no credentials (cached per process), hence anonymous clients, at once.
            from apache_beam.internal.gcp import auth

            mp.setattr(auth._Credentials, "_credentials_init", True)
            mp.setattr(auth._Credentials, "_credentials", None)

            from google.cloud import storage

            storage.Client.create_anonymous_client().create_bucket(BUCKET)
            yield emulator_url
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def gcsfs_client(gcs):
    # gcsfs.GCSFileSystem is by default the "extended" class, which first asks the Storage
    # Control gRPC API (absent from the emulator) for the bucket's layout: 60 s timeouts.
    from gcsfs.core import GCSFileSystem

    return GCSFileSystem(endpoint_url=gcs, token="anon", skip_instance_cache=True)


def _config(output_dir: str, corpus: str, *more: str):
    from seqbeam.configs.schema import load_config

    return load_config(os.path.join(REPO, "configs", "emoji.yaml"),
                       [f"output_dir={output_dir}", f"data.path={corpus}", f"infer.input.path={corpus}", *SMALL, *more])


@pytest.fixture(scope="module")
def corpus(gcs) -> str:
    """The emoji sentences, uploaded to the bucket under the same file name (row ids are ``<file>:<offset>``)."""
    from apache_beam.io.filesystems import FileSystems

    path = f"gs://{BUCKET}/corpora/{os.path.basename(CORPUS)}"
    with FileSystems.create(path) as f, open(CORPUS, "rb") as local:
        f.write(local.read())
    return path


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    """The emoji task run on gs:// (corpus in the bucket) and on local disk."""
    from seqbeam.pipelines import run

    stray_before = os.path.exists("gs:")  # what os.makedirs("gs://...") would leave in the working folder
    on_gcs = run.run_config(_config(f"gs://{BUCKET}/out", corpus))
    local = run.run_config(_config(str(tmp_path_factory.mktemp("local")), CORPUS))
    return {"gcs": on_gcs, "local": local, "stray_local_gs_folder": os.path.exists("gs:") and not stray_before}


# ---------------------------------------------------------------------------------------
# Helpers


def statuses(summary: dict) -> dict:
    return {outcome["stage"]: outcome["status"] for outcome in summary["stages"]}


def outputs(summary: dict) -> dict:
    return {f"{o['stage']}.{name}": path for o in summary["stages"] for name, path in o["outputs"].items()}


def read_bytes(path: str) -> bytes:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def read_examples(data_dir: str, split: str) -> list[dict]:
    """A split's Examples (local or gs://, read by TensorFlow) as {feature: values}, sorted by id."""
    import tensorflow as tf

    rows = []
    for path in sorted(tf.io.gfile.glob(f"{data_dir}/{split}-*.tfrecord.gz")):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            rows.append({name: list(f.bytes_list.value or f.int64_list.value)
                         for name, f in example.features.feature.items()})
    return sorted(rows, key=lambda row: row["id"])


def object_names(gcsfs_client, prefix: str) -> list[str]:
    gcsfs_client.invalidate_cache()
    return sorted(path[len(BUCKET) + 1:] for path in gcsfs_client.find(f"{BUCKET}/{prefix}"))


# ---------------------------------------------------------------------------------------
# Tests


def test_the_main_job_reads_and_writes_everything_on_gcs(runs, gcsfs_client):
    summary = runs["gcs"]
    assert statuses(summary) == dict.fromkeys(("preprocess", "train", "infer", "evaluate"), "ran")
    task = f"gs://{BUCKET}/out/emoji"
    assert summary["task_dir"] == task and summary["report"] == f"{task}/report.html"
    assert all(path.startswith(f"{task}/") for path in outputs(summary).values()), outputs(summary)
    assert summary["stages"][0]["summary"]["rows"]["in"] == 350
    names = object_names(gcsfs_client, "out/emoji")
    model = outputs(summary)["train.model"][len(f"gs://{BUCKET}/"):]
    for expected in ["out/emoji/data/metadata.json", "out/emoji/data/config.yaml", "out/emoji/data/vocab/tokens.txt",
                     "out/emoji/train/history.json", "out/emoji/train/metrics.json",
                     f"{model}/saved_model.pb", f"{model}/model_card.json", f"{model}/assets/tokens.txt",
                     f"{model}/variables/variables.index", "out/emoji/infer_summary.json",
                     "out/emoji/eval/metrics.json", "out/emoji/report.html", "out/emoji/run_summary.json",
                     *[f"out/emoji/_markers/{stage}.json" for stage in ("preprocess", "train", "infer", "evaluate")]]:
        assert expected in names
    assert any(re.fullmatch(r"out/emoji/data/train-\d{5}-of-\d{5}\.tfrecord\.gz", n) for n in names)
    assert any(re.fullmatch(r"out/emoji/predictions/predictions-\d{5}-of-\d{5}\.parquet", n) for n in names)
    assert any(n.startswith("out/emoji/train/logs/train/events.out.tfevents.") for n in names)  # TensorBoard
    assert not any(n.startswith("out/emoji/train/backup") for n in names)  # BackupAndRestore cleaned up
    marker = json.loads(read_bytes(f"{task}/_markers/train.json"))
    assert marker["outputs"]["model"] == outputs(summary)["train.model"]
    report = read_bytes(f"{task}/report.html").decode("utf-8")
    local_report = open(runs["local"]["report"], encoding="utf-8").read()
    assert report.count("data:image/png;base64,") == local_report.count("data:image/png;base64,") > 0
    assert not runs["stray_local_gs_folder"], "a gs:// path was written to local disk as ./gs:/..."


def test_the_gcs_run_equals_the_local_run(runs, gcsfs_client):
    import pyarrow.parquet as pq

    on_gcs, local = runs["gcs"], runs["local"]
    gcs_data, local_data = f"{on_gcs['task_dir']}/data", f"{local['task_dir']}/data"
    gcs_meta, local_meta = (json.loads(read_bytes(f"{d}/metadata.json")) for d in (gcs_data, local_data))
    for key in ("rows", "vocab_sizes", "vocab_fingerprints", "max_lengths", "truncated", "rejected", "shards"):
        assert gcs_meta[key] == local_meta[key], key
    assert read_bytes(f"{gcs_data}/vocab/tokens.txt") == read_bytes(f"{local_data}/vocab/tokens.txt")
    for split in ("train", "valid", "test"):
        examples = read_examples(gcs_data, split)  # TFRecordDataset over gs://
        assert len(examples) == gcs_meta["rows"][split] and examples == read_examples(local_data, split)
    # The Parquet predictions, read back with gcsfs (as pandas.read_parquet("gs://...") would).
    predictions = pq.read_table(f"{BUCKET}/out/emoji/predictions", filesystem=gcsfs_client).sort_by("id")
    local_predictions = pq.read_table(os.path.join(local["task_dir"], "predictions")).sort_by("id")
    assert predictions.num_rows == local_predictions.num_rows == 350
    assert predictions.schema == local_predictions.schema
    rows, local_rows = predictions.to_pylist(), local_predictions.to_pylist()
    for row in rows + local_rows:
        row.pop("model_version")  # the export time
    # Same data in the same order, same seed, same CPU kernels: the same model, to the last
    # bit of every probability.
    assert rows == local_rows
    gcs_metrics = json.loads(read_bytes(f"{on_gcs['task_dir']}/eval/metrics.json"))
    local_metrics = json.loads(read_bytes(f"{local['task_dir']}/eval/metrics.json"))
    for key in ("config_hash", "reference", "predictions"):  # hold the paths
        gcs_metrics.pop(key), local_metrics.pop(key)
    assert gcs_metrics == local_metrics


def test_a_second_gcs_run_skips_every_stage(runs, corpus, gcsfs_client):
    from seqbeam.pipelines import run

    first = runs["gcs"]
    model_files = object_names(gcsfs_client, "out/emoji/model")
    second = run.run_config(_config(f"gs://{BUCKET}/out", corpus))
    assert statuses(second) == dict.fromkeys(("preprocess", "train", "infer", "evaluate"), "skipped")
    assert outputs(second) == outputs(first)
    assert object_names(gcsfs_client, "out/emoji/model") == model_files  # no second export


def test_folders_on_gcs_exist_and_are_deleted_with_what_they_hold(gcs):
    """On gs:// a folder is a name prefix: ``path_exists``/``delete_paths`` see it, ``FileSystems.exists`` does not."""
    from apache_beam.io.filesystems import FileSystems

    from seqbeam.storage import delete_paths, path_exists, write_text

    root = f"gs://{BUCKET}/folders"
    for name in ("model/1/saved_model.pb", "model/1/variables/variables.index", "model_card.json", "models/x"):
        write_text(name, f"{root}/{name}")
    assert not FileSystems.exists(f"{root}/model")
    assert path_exists(f"{root}/model") and path_exists(f"{root}/model/1/") and path_exists(f"{root}/model_card.json")
    assert not path_exists(f"{root}/mode") and not path_exists(f"{root}/nothing")
    delete_paths([f"{root}/model", f"{root}/nothing"])
    assert not path_exists(f"{root}/model")
    # Names that only start like the folder are not in it.
    assert path_exists(f"{root}/model_card.json") and path_exists(f"{root}/models/x")
    delete_paths([f"{root}/model_card.json"])
    assert not path_exists(f"{root}/model_card.json") and path_exists(f"{root}/models")


def test_metadata_rewritten_on_gcs_is_read_afresh(gcs):
    """TensorFlow's GCS client keeps an object's size for 5 s: metadata.json is read by Beam, its writer."""
    import tensorflow as tf

    from seqbeam.models.inputs import load_metadata
    from seqbeam.storage import write_json

    folder = f"gs://{BUCKET}/rewritten"
    for rows in ({"train": 12345}, {"train": 1}):
        write_json({"rows": rows}, f"{folder}/metadata.json")
        tf.io.gfile.stat(f"{folder}/metadata.json")  # as TensorFlow's own readers would
        assert load_metadata(folder) == {"rows": rows}


def test_a_rerun_with_fewer_shards_leaves_one_set_of_shards_on_gcs(runs, corpus, gcsfs_client):
    """After the runs above (two shards per split): preprocess again with one."""
    from seqbeam.pipelines import run

    def shards() -> list[str]:
        return [n for n in object_names(gcsfs_client, "out/emoji/data") if n.endswith(".tfrecord.gz")]

    assert len(shards()) == 6
    summary = run.run_config(_config(f"gs://{BUCKET}/out", corpus, "preprocess.num_shards=1"), stages=("preprocess",),
                             report=False)
    assert statuses(summary) == {"preprocess": "ran"}
    assert shards() == [f"out/emoji/data/{split}-00000-of-00001.tfrecord.gz" for split in ("test", "train", "valid")]
    assert not object_names(gcsfs_client, "out/emoji/_markers/train.json")  # the later stages are stale now


def test_a_training_run_stopped_on_gcs_resumes_from_its_backup_there(runs, corpus, gcsfs_client, monkeypatch):
    """Last (it retrains the run above): forced training stops after its first epoch, then resumes."""
    from seqbeam.pipelines import run, train

    class Stopped(Exception):
        pass

    progress = train._ProgressLog.on_epoch_end

    def stop_after_the_first_epoch(self, epoch, logs=None):
        progress(self, epoch, logs)  # BackupAndRestore, earlier in the callbacks, has saved the epoch
        raise Stopped

    config = _config(f"gs://{BUCKET}/out", corpus)
    monkeypatch.setattr(train._ProgressLog, "on_epoch_end", stop_after_the_first_epoch)
    with pytest.raises(Stopped):
        run.run_config(config, stages=("train",), force=True, report=False)
    left = object_names(gcsfs_client, "out/emoji/train")
    assert "out/emoji/train/backup/latest.weights.h5" in left
    assert "out/emoji/train/history.json" not in left  # --force deleted the previous run's training folder
    assert json.loads(read_bytes(f"gs://{BUCKET}/out/emoji/train/backup/training_metadata.json"))["epoch"] == 1
    monkeypatch.undo()

    outcome = run.run_config(config, stages=("train",), report=False)["stages"][0]
    assert outcome["status"] == "ran" and outcome["summary"]["epochs_run"] == 1  # only the epoch left
    assert outcome["summary"]["steps"] == runs["gcs"]["stages"][1]["summary"]["steps"]  # as if never stopped
    assert not object_names(gcsfs_client, "out/emoji/train/backup")


if __name__ == "__main__":
    _serve(sys.argv[1])
