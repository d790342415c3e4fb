"""Small clips and configs shared by the training tests."""
import torch
from torch.utils.data import Dataset

from afb_urr.config import Config, ModelConfig
from afb_urr.data import DataConfig
from afb_urr.training.config import TrainConfig, ValConfig


class ToyClips(Dataset):
    """Clips of two coloured squares moving over a noisy background (random per call)."""

    def __init__(self, n=4, frames=3, size=32):
        self.n, self.frames, self.size = n, frames, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        t, s = self.frames, self.size
        frames = torch.rand(3, 1, 1) * 0.3 + 0.1 * torch.rand(t, 3, s, s)
        labels = torch.zeros(t, s, s, dtype=torch.long)
        for obj, colour in ((1, (1.0, 0.2, 0.2)), (2, (0.2, 0.3, 1.0))):
            y, x = (int(v) for v in torch.randint(0, s // 2, (2,)))
            for f in range(t):
                yy, xx = y + f, x + f
                frames[f, :, yy:yy + s // 3, xx:xx + s // 3] = torch.tensor(colour).view(3, 1, 1)
                labels[f, yy:yy + s // 3, xx:xx + s // 3] = obj
        masks = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
        return {"frames": frames.clamp(0, 1), "masks": masks, "num_objects": 2, "info": {"index": i}}


def train_cfg(tmp_path, **train):
    kw = dict(lr=1e-4, epochs=2, lr_step=1, pretrained=False, num_workers=0, log_every=1, batchnorm="track",
              output_dir=str(tmp_path / "run"), bank_budget=100000, decoder_init_std=1.0)
    kw.update(train)
    return Config(model=ModelConfig("resnet18"),
                  train=TrainConfig(**kw), data=DataConfig(), val=ValConfig())


def flat_params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def flat_state(model):
    return torch.cat([t.detach().float().flatten() for t in model.state_dict().values()])
