"""Two CPU processes under torchrun (gloo): DDP keeps the weights identical on both ranks."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from afb_urr.training.distributed import ResumableSampler

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = textwrap.dedent('''
    import os, sys
    import torch
    from torch.utils.data import Dataset
    from afb_urr.config import Config, ModelConfig
    from afb_urr.data import DataConfig
    from afb_urr.training.config import TrainConfig, ValConfig
    from afb_urr.training.loop import Trainer

    torch.set_num_threads(1)
    out = sys.argv[1]

    class Clips(Dataset):
        """Different random clips per index (so the two ranks see different data)."""
        def __len__(self):
            return 8
        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            frames = torch.rand(2, 3, 64, 64, generator=g)
            labels = torch.zeros(2, 64, 64, dtype=torch.long)
            y, x = (int(v) for v in torch.randint(0, 32, (2,), generator=g))
            labels[:, y:y + 24, x:x + 24] = 1
            frames[:, 0][labels == 1] = 1.0
            masks = torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float()
            return {"frames": frames, "masks": masks, "num_objects": 1, "info": {"index": i}}

    tc = TrainConfig(lr=1e-3, epochs=1, pretrained=False, num_workers=0, log_every=1, max_steps=3,
                     batchnorm="track", decoder_init_std=1.0, output_dir=os.path.join(out, "run"))
    cfg = Config(model=ModelConfig("resnet18"), train=tc, data=DataConfig(), val=ValConfig())

    def flat(model):
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    def dump(trainer, step):
        torch.save(flat(trainer.model), os.path.join(out, f"rank{trainer.dist.rank}_step{step}.pt"))

    trainer = Trainer(cfg, train_set=Clips(), val_videos=[], device="cpu", progress=False, on_step=dump)
    assert trainer.dist.world_size == 2 and trainer.dist.distributed
    assert torch.distributed.get_backend() == "gloo"
    dump(trainer, 0)
    trainer.fit()
    trainer.close()
''')


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           str(script), str(tmp_path)]
    try:
        proc = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True,
                              timeout=240)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"torchrun did not finish in time:\n{e.stdout}\n{e.stderr}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    start = torch.load(tmp_path / "rank0_step0.pt")
    assert torch.equal(start, torch.load(tmp_path / "rank1_step0.pt"))
    prev = start
    for step in (1, 2, 3):
        a = torch.load(tmp_path / f"rank0_step{step}.pt")
        b = torch.load(tmp_path / f"rank1_step{step}.pt")
        assert torch.equal(a, b), f"ranks differ after step {step}: max |diff| {(a - b).abs().max()}"
        assert not torch.equal(a, prev), f"step {step} changed nothing"
        prev = a
    # Rank 0 alone wrote the checkpoint and the log.
    assert (tmp_path / "run" / "latest.pth").is_file()
    rows = (tmp_path / "run" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 4  # header + 3 steps
    blob = torch.load(tmp_path / "run" / "latest.pth", weights_only=True)
    assert blob["world_size"] == 2 and blob["step"] == 3


def test_sampler_resume_and_ranks():
    full = ResumableSampler(7, seed=3)
    full.set_epoch(2)
    order = list(full)
    part = ResumableSampler(7, seed=3)
    part.set_epoch(2, start=4)
    assert list(part) == order[4:] and len(part) == 3
    ranks = [ResumableSampler(7, rank=r, world_size=2, seed=3) for r in range(2)]
    for s in ranks:
        s.set_epoch(2)
    a, b = list(ranks[0]), list(ranks[1])
    assert len(a) == len(b) == 4 and set(a) | set(b) == set(range(7))
