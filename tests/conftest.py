import importlib.util
import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a fresh module (the thin scripts over afb_urr.cli)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", os.path.join(ROOT, "tools", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def light_model():
    """A randomly initialised light (ResNet-18) network, shared read-only by tests."""
    torch.manual_seed(0)
    from afb_urr import AFBURR
    return AFBURR("resnet18").eval()


@pytest.fixture(scope="session")
def light_checkpoint(light_model, tmp_path_factory):
    """``light_model`` saved as a published-format checkpoint (its path)."""
    from afb_urr import save_checkpoint
    path = tmp_path_factory.mktemp("ckpt") / "r18.pth"
    save_checkpoint(str(path), light_model)
    return str(path)


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (the small training tests are no faster with more)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
