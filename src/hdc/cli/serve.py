"""`python serve.py ckpt_path=PATH`: a checkpoint behind an HTTP API (LitServe), with an attention page.

- `POST /predict` `{"texts": [...]}` or `{"text": "..."}` (and `"attention": true` for the sentences and
  words with their weights): `{"predictions": [...]}`, each as predict.py writes a line. Concurrent
  requests are batched into one forward pass (LitServe's dynamic batching: `max_batch_size` requests,
  waiting at most `batch_timeout` seconds for them).
- `GET /`: a page with a text box; submitting it shows the prediction and the attention heatmap drawn
  by hdc.viz.heatmap (escaped, no scripts, nothing fetched: it works with scripting off).
- `GET /health`, `GET /info` (LitServe's): liveness; the labels, caps, model config and checkpoint digest.
Bad input is a 4xx with a JSON body (FastAPI validates the request's model; LitServe caps the body at
`max_bytes`), never a 500. The server binds 127.0.0.1 unless `host=` says otherwise.
With `api_key=` (or LIT_SERVER_API_KEY, LitServe's variable) `/predict` and `/info` answer only requests
whose X-API-Key header holds the key, and the page's form asks for it: else 401 with a JSON reason.
`/health` stays open, for load balancers.
"""

import hashlib
import hmac
import logging
import os
import signal
import socket
from html import escape
from pathlib import Path
from urllib.parse import parse_qs

import hydra
import litserve as ls
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from omegaconf import DictConfig
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hdc.classifier.checkpoint import read_checkpoint
from hdc.errors import HdcError, reported_as_one_line
from hdc.inference.explain import checked_attribution
from hdc.inference.predictor import load
from hdc.paths import CONFIG_DIR
from hdc.precision import checked
from hdc.prediction import Prediction

log = logging.getLogger(__name__)


class PredictRequest(BaseModel):
    """The body of POST /predict: one text or a list of them."""

    model_config = ConfigDict(extra="forbid", strict=True)
    texts: list[str] | None = Field(None, min_length=1)
    text: str | None = None
    attention: bool = False

    @model_validator(mode="after")
    def one_of_text_or_texts(self) -> "PredictRequest":
        if (self.texts is None) == (self.text is None):
            raise ValueError('give "texts" (a list of strings) or "text" (a string), not both')
        return self


class ClassifierAPI(ls.LitAPI):
    def __init__(
        self, ckpt_path: str, precision: str, batch_size: int, max_documents: int, attribution: str = "attention",
        **batching,
    ):  # fmt: skip
        super().__init__(api_path="/predict", **batching)
        self.ckpt_path, self.precision, self.batch_size, self.max_documents = (
            ckpt_path, precision, batch_size, max_documents)  # fmt: skip
        self.attribution = attribution

    def authorize(self) -> None:
        """LitServe's hook, which would guard /health too; require_key guards the API instead."""

    def setup(self, device: str) -> None:
        self.predictor = load(self.ckpt_path, device, self.precision, self.attribution)
        self.predictor.batch_size = self.batch_size

    def decode_request(self, request: PredictRequest) -> tuple[list[str], bool]:
        texts = request.texts if request.texts is not None else [request.text]
        if len(texts) > self.max_documents:
            raise HTTPException(413, f"{len(texts)} documents in one request; at most {self.max_documents}")
        return texts, request.attention

    def batch(self, inputs: list) -> list:
        return inputs

    def predict(self, requests):
        """All texts of the batched requests in one call of the Predictor, then each request's share."""
        batched = self.max_batch_size > 1
        requests = requests if batched else [requests]
        predictions = self.predictor.predict([text for texts, _ in requests for text in texts])
        answers, start = [], 0
        for texts, attention in requests:
            answers.append((predictions[start : start + len(texts)], attention))
            start += len(texts)
        return answers if batched else answers[0]

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output) -> dict:
        predictions, attention = output
        rows = [p.to_dict() for p in predictions]
        return {
            "predictions": rows if attention else [{k: v for k, v in row.items() if k != "sentences"} for row in rows]
        }


def digest(path: str) -> str | None:
    """The checkpoint's SHA-256, or its weights' in a model folder; None for a model on the Hub."""
    path = Path(path) / "model.safetensors" if Path(path).is_dir() else Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def model_info(ckpt_path: str) -> dict:
    """What GET /info says of the model (read once, in the serving process, without the weights' code)."""
    checkpoint = read_checkpoint(ckpt_path)
    encoder = checkpoint["hdc"]["encoder"]
    hparams = checkpoint["hyper_parameters"]
    return {
        "checkpoint": str(Path(ckpt_path).resolve()) if Path(ckpt_path).exists() else str(ckpt_path),
        "sha256": digest(ckpt_path),
        "labels": list(hparams["label_names"]),
        "caps": {"max_sentences": encoder["max_sentences"], "max_words": encoder["max_words"]},
        "model": {k: v for k, v in hparams.items() if k != "label_names"},
    }


FORM = """<form method="post" action="/">
<textarea name="text" rows="10" cols="80" style="width: 100%" placeholder="A document to classify">{text}</textarea>
{key}<p><button type="submit">Classify</button></p>
</form>
"""
KEY_FIELD = '<p><label>API key <input type="password" name="api_key" autocomplete="current-password"></label></p>\n'
KEY_HEADER = "X-API-Key"


def page_html(title: str, text: str = "", prediction: Prediction | None = None, keyed: bool = False) -> str:
    """The heatmap page of hdc.viz.heatmap (its style, escaping, no scripts) with the form on top."""
    from hdc.viz.heatmap import attention_html

    page = attention_html([prediction] if prediction else [], None, title)
    if prediction is None:  # no document yet: the page without its legend
        page = page[: page.index('<p class="legend">')] + "</body></html>\n"
    form = FORM.format(text=escape(text), key=KEY_FIELD if keyed else "")
    return page.replace(f"<h1>{escape(title)}</h1>", f"<h1>{escape(title)}</h1>{form}", 1)


def key_matches(given: str | None, key: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), key.encode())  # in constant time


def require_key(server: ls.LitServer, key: str) -> None:
    """/predict and /info answer only with the key in the X-API-Key header; 401 with a JSON reason else."""

    @server.app.middleware("http")
    async def key_required(request: Request, call_next):
        if request.url.path in ("/predict", "/info") and not key_matches(request.headers.get(KEY_HEADER), key):
            reason = f"a valid {KEY_HEADER} header is required" if request.headers.get(KEY_HEADER) is None else (
                f"the {KEY_HEADER} header does not hold this server's key")  # fmt: skip
            return JSONResponse({"detail": reason}, status_code=401)
        return await call_next(request)


def add_page(server: ls.LitServer, port: int, title: str, key: str | None = None) -> None:
    """GET / and POST / (the form): the heatmap of one document, predicted through POST /predict (so
    the page gets exactly what the API answers, batched with the other requests)."""
    import httpx

    # LitServe answers GET / with "litserve running"; the page takes its place
    server.app.router.routes = [r for r in server.app.router.routes if getattr(r, "path", None) != "/"]

    @server.app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return page_html(title, keyed=key is not None)

    @server.app.post("/", response_class=HTMLResponse)
    async def classify(request: Request) -> str:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        text, given = (form.get("text") or [""])[0], (form.get("api_key") or [None])[0]
        if key is not None and not key_matches(given, key):
            raise HTTPException(401, "the form's API key is missing or wrong")
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"http://127.0.0.1:{port}/predict", json={"text": text, "attention": True},
                                       headers={KEY_HEADER: key} if key else {}, timeout=60)  # fmt: skip
        if answer.status_code != 200:
            raise HTTPException(answer.status_code, answer.json().get("detail"))
        return page_html(title, text, Prediction.from_dict(answer.json()["predictions"][0]), keyed=key is not None)


def check_port_free(host: str, port: int) -> None:
    """One line, before the model loads, when another process holds the port (uvicorn would say so only
    after the server had announced itself)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as error:
        raise HdcError(
            f"port={port}: cannot listen on {host}:{port} ({error.strerror}); choose another port="
        ) from None


def server_key(cfg: DictConfig) -> str | None:
    """The key requests must give: api_key=, else LIT_SERVER_API_KEY; None: none, said when the server
    listens beyond this machine."""
    key = cfg.get("api_key") or os.environ.get("LIT_SERVER_API_KEY") or None
    if key is None and cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(f"host={cfg.host} without api_key: anyone who can reach port {cfg.port} can use the model; "
                    f"set LIT_SERVER_API_KEY (or api_key=...)")  # fmt: skip
    return None if key is None else str(key)


def serve(cfg: DictConfig) -> None:
    checked(cfg.precision)
    check_port_free(cfg.host, cfg.port)
    try:
        info = model_info(cfg.ckpt_path)
    except HdcError as error:
        raise HdcError(f"ckpt_path={error}") from None
    attribution = checked_attribution(
        cfg.get("attribution", "attention"), info["model"]["net"]["_target_"].split(".")[-1]
    )
    api = ClassifierAPI(
        str(cfg.ckpt_path), cfg.precision, cfg.batch_size, cfg.max_documents, attribution,
        max_batch_size=cfg.max_batch_size, batch_timeout=cfg.batch_timeout,
    )  # fmt: skip
    server = ls.LitServer(
        api,
        accelerator="cuda" if str(cfg.device).startswith("cuda") else "cpu",
        devices=1,
        timeout=cfg.timeout,
        model_metadata=info,
        max_payload_size=cfg.max_bytes,
    )
    key = server_key(cfg)
    if key is not None:
        require_key(server, key)
    add_page(server, cfg.port, f"hdc: {Path(cfg.ckpt_path).name}", key)
    log.info(f"Serving {cfg.ckpt_path} ({', '.join(info['labels'])}) on http://{cfg.host}:{cfg.port}")
    # LitServe shuts its worker processes down on Ctrl+C (KeyboardInterrupt) but has no SIGTERM handler:
    # a terminated server would leave them running. SIGTERM takes the same way out.
    signal.signal(signal.SIGTERM, _interrupt)
    server.run(host=cfg.host, port=cfg.port, generate_client_file=False, log_level="warning")


_MAIN_PID = os.getpid()


def _interrupt(signum, frame) -> None:
    if os.getpid() == _MAIN_PID:  # the serving process: LitServe's graceful shutdown
        raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)  # a worker that inherited the handler ends as it would have
    os.kill(os.getpid(), signum)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="serve.yaml")
def main(cfg: DictConfig) -> None:
    with reported_as_one_line(log):
        serve(cfg)
