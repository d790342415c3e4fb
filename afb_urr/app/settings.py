"""What a running app was started with (``tools/app.py`` options), in one place."""
from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost': addresses other machines cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class AppSettings:
    """Options of one app. ``weights=None`` means the demo weights and the demo video.

    ``referring_weights`` / ``vocab``: the referring (LAVT) model of the text box (objects
    from sentences); with the demo weights it defaults to the light demo referring weights.

    ``token``: required on every request when set; ``resolve_token`` sets one for a
    non-loopback host. ``allowed_hosts``: Host headers accepted without a token
    (defends a loopback server against DNS rebinding).
    """
    work: str
    weights: str | None = None
    referring_weights: str | None = None
    vocab: str | None = None
    videos: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    config: str = "davis17"
    device: str | None = None
    max_upload_bytes: int = 512 * 2**20
    max_frames: int = 20000
    frame_cache_bytes: int = 256 * 2**20
    allowed_hosts: tuple[str, ...] = field(default=LOOPBACK_NAMES)

    def __post_init__(self):
        self.work = os.path.abspath(self.work)
        if self.videos is not None:
            self.videos = os.path.abspath(self.videos)
            if not os.path.isdir(self.videos):
                raise ValueError(f"--videos {self.videos}: folder not found")
        if self.weights is not None and not os.path.isfile(self.weights):
            raise ValueError(f"--weights {self.weights}: checkpoint not found")
        for flag, path in (("--referring-weights", self.referring_weights), ("--vocab", self.vocab)):
            if path is not None and not os.path.exists(path):
                raise ValueError(f"{flag} {path}: not found")
        if self.vocab is not None and self.referring_weights is None:
            raise ValueError("--vocab is the vocabulary of a referring model: give --referring-weights too")
        if self.max_upload_bytes <= 0:
            raise ValueError("the upload size limit must be positive")

    @property
    def demo(self) -> bool:
        """True when running on the demo weights (then the demo video is offered)."""
        return self.weights is None

    @property
    def weights_path(self) -> str:
        from ..inference.demo import demo_weights
        return self.weights or demo_weights()

    @property
    def referring_path(self) -> str | None:
        """The text box's referring model: ``referring_weights``, else with the demo weights the
        light demo referring weights when present, else None (no text box)."""
        if self.referring_weights is not None or not self.demo:
            return self.referring_weights
        from ..inference.demo import demo_weights
        path = demo_weights(referring=True)
        return path if os.path.isfile(path) else None

    def resolve_token(self) -> str | None:
        """Generate a token when listening beyond loopback without one; returns the token."""
        if self.token is None and not is_loopback(self.host):
            self.token = secrets.token_urlsafe(18)
        return self.token
