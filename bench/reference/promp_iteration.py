#!/usr/bin/env python3
"""A PyTorch implementation of magicbox's ProMP iteration on point-corners, written for this project as
the yardstick of `npm run bench -- promp-iteration --reference`.

It computes what src/meta/iteration.ts computes for `--algo promp`, with the same sizes:
  * point-corners (src/envs/point-corners.ts): goals (±2, ±2), actions clipped to ±0.2, start
    U(−0.2, 0.2)², reward = progress toward the goal while it is the nearest corner and the point is
    outside the L1 start region of 0.5, never done;
  * a Gaussian MLP policy 2 → 64 → 64 → 2, tanh, learned state-independent log-std;
  * per task and level: the linear feature baseline [clip(s, ±10), s², t/100, (t/100)², (t/100)³, 1]
    refit by ridge least squares (1e-5) on the discounted returns, GAE (γ 0.99, λ 1), advantages
    normalised over the task's steps;
  * the inner step θ' = θ + α∇J^LR, J^LR = Σ exp(log π_θ − log π_behaviour)·A / steps (k = 3 steps, a
    new batch sampled after each);
  * the outer step: N = 5 Adam steps (1e-3) on mean_i [−J^CLIP_i(θ'_i(θ)) + η·KL(π_θo ‖ π_θ) on D_0],
    θ'_i(θ) recomputed through every inner step with create_graph, one task's graph at a time; then
    what it reached, per task at the final θ (magicbox's prompTaskDiagnostics; the released ProMP
    optimizer's compute_stats, logged as LossAfter / KL): J^CLIP − η·KL, the KL and the fraction of
    post-update steps whose ratio is outside [1 − ε, 1 + ε].
The random numbers differ from magicbox's (NumPy's generator), so the trajectories do too; the work
done is the same. `check` evaluates the outer loss and its gradient on a batch magicbox wrote, in
float64, so that the two implementations can be compared number for number.

Protocol: one JSON request per stdin line, one JSON answer per stdout line.
  {"cmd": "init", "threads": 1, "tasks": 10, "trajectories": 20, "horizon": 100, "steps": 3, "seed": 1}
  {"cmd": "iterate"}            -> {"sampling": s, "adaptation": s, "outer": s, "total": s, "cpu": s, "outerCpu": s, "maxRssMb": m}
  {"cmd": "check", "file": F}   -> {"loss": x, "grads": {name: [...]}}
  {"cmd": "kernels", "threads": 1, "rows": 2000, "width": 64, "calls": 200}
                                -> seconds per call of the policy's hot kernels (`npm run bench -- kernels`)
  {"cmd": "quit"}
"""
import json
import math
import resource
import sys
import time

import numpy as np
import torch

CORNERS = np.array([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]], dtype=np.float32)
MAX_ACTION, START_REGION, START_SPREAD = 0.2, 0.5, 0.2
GAMMA, GAE_LAMBDA, INNER_STEP, OUTER_LR, PROMP_STEPS, CLIP, KL_PENALTY = 0.99, 1.0, 0.1, 1e-3, 5, 0.3, 5e-4
HIDDEN = (64, 64)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
NAMES = ["W0", "b0", "W1", "b1", "W2", "b2", "logStd"]


def init_params(rng, obs_dim=2, act_dim=2):
    widths = [obs_dim, *HIDDEN, act_dim]
    params = {}
    for i in range(len(widths) - 1):
        limit = math.sqrt(6 / (widths[i] + widths[i + 1]))
        params[f"W{i}"] = torch.tensor(rng.uniform(-limit, limit, (widths[i], widths[i + 1])), dtype=torch.float32)
        params[f"b{i}"] = torch.zeros(widths[i + 1])
    params["logStd"] = torch.zeros(act_dim)
    return params


def mean_of(p, obs):
    """The MLP's mean; obs [..., 2]; weights [in, out] or, per task, [tasks, in, out] with obs [tasks, rows, in]."""
    h = obs
    layers = len(HIDDEN) + 1
    for i in range(layers):
        w, b = p[f"W{i}"], p[f"b{i}"]
        h = (torch.bmm(h, w) + b.unsqueeze(1)) if w.dim() == 3 else (h @ w + b)
        if i + 1 < layers:
            h = torch.tanh(h)
    return h


def log_prob(p, obs, act):
    z = (act - mean_of(p, obs)) * torch.exp(-p["logStd"])
    return (-(0.5 * z * z + p["logStd"]) - HALF_LOG_2PI).sum(-1)


def kl(p, q, obs):
    """KL(π_p ‖ π_q) per step."""
    log_ratio = p["logStd"] - q["logStd"]
    gap = (mean_of(p, obs) - mean_of(q, obs)) * torch.exp(-q["logStd"])
    return (0.5 * (torch.exp(2 * log_ratio) + gap * gap) - log_ratio - 0.5).sum(-1)


def sample(level_params, goals, n, horizon, rng):
    """Trajectories of every task at once: obs, actions [tasks, n, H, 2], rewards [tasks, n, H]."""
    tasks = goals.shape[0]
    stacked = {k: torch.stack([p[k] for p in level_params]) for k in NAMES}
    pos = rng.uniform(-START_SPREAD, START_SPREAD, (tasks, n, 2)).astype(np.float32)
    obs = np.empty((tasks, n, horizon, 2), np.float32)
    act = np.empty((tasks, n, horizon, 2), np.float32)
    rew = np.empty((tasks, n, horizon), np.float32)
    std = torch.exp(stacked["logStd"]).numpy()[:, None, :]
    g = goals[:, None, :]
    with torch.no_grad():
        for t in range(horizon):
            obs[:, :, t] = pos
            mean = mean_of(stacked, torch.from_numpy(pos)).numpy()
            a = (mean + std * rng.standard_normal(mean.shape)).astype(np.float32)
            act[:, :, t] = a
            before = np.linalg.norm(pos - g, axis=-1)
            pos = pos + np.clip(a, -MAX_ACTION, MAX_ACTION)
            after = np.linalg.norm(pos - g, axis=-1)
            nearest = np.all(np.linalg.norm(pos[:, :, None, :] - CORNERS, axis=-1) >= after[..., None], axis=-1)
            inside = np.abs(pos).sum(-1) < START_REGION
            rew[:, :, t] = np.where(inside | ~nearest, 0.0, before - after)
    return obs, act, rew


def advantages(obs, rew):
    """One task: linear feature baseline on the discounted returns, GAE(γ, 1), normalised."""
    n, horizon, d = obs.shape
    ret = np.zeros((n, horizon), np.float64)
    running = np.zeros(n)
    for t in range(horizon - 1, -1, -1):
        running = rew[:, t] + GAMMA * running
        ret[:, t] = running
    o = np.clip(obs.reshape(-1, d).astype(np.float64), -10, 10)
    s = np.tile(np.arange(horizon) / 100.0, n)
    phi = np.concatenate([o, o * o, s[:, None], (s * s)[:, None], (s**3)[:, None], np.ones((n * horizon, 1))], axis=1)
    coef = np.linalg.solve(phi.T @ phi + 1e-5 * np.eye(phi.shape[1]), phi.T @ ret.reshape(-1))
    values = (phi @ coef).reshape(n, horizon)
    next_values = np.concatenate([values[:, 1:], np.zeros((n, 1))], axis=1)
    delta = rew + GAMMA * next_values - values
    adv = np.zeros((n, horizon))
    running = np.zeros(n)
    for t in range(horizon - 1, -1, -1):
        running = delta[:, t] + GAMMA * GAE_LAMBDA * running
        adv[:, t] = running
    return ((adv - adv.mean()) / (adv.std() + 1e-8)).astype(np.float32)


def level_data(obs, act, adv, behaviour, dtype=torch.float32):
    return {
        "obs": torch.as_tensor(obs, dtype=dtype),
        "act": torch.as_tensor(act, dtype=dtype),
        "adv": torch.as_tensor(adv, dtype=dtype),
        "behaviour": torch.as_tensor(behaviour, dtype=dtype),
    }


def inner_step(p, data, create_graph):
    ratio = torch.exp(log_prob(p, data["obs"], data["act"]) - data["behaviour"])
    objective = (ratio * data["adv"]).sum() / data["adv"].numel()
    grads = torch.autograd.grad(objective, [p[k] for k in NAMES], create_graph=create_graph)
    return {k: p[k] + INNER_STEP * g for k, g in zip(NAMES, grads)}


def adapted(p, data):
    """The sampling parameters of the next level: one inner step, no graph kept."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
    return {k: v.detach() for k, v in inner_step(leaves, data, create_graph=False).items()}


def task_loss(theta, theta_old, pre, post):
    p = theta
    for data in pre:
        p = inner_step(p, data, create_graph=True)
    ratio = torch.exp(log_prob(p, post["obs"], post["act"]) - post["behaviour"])
    clipped = torch.minimum(ratio * post["adv"], torch.clamp(ratio, 1 - CLIP, 1 + CLIP) * post["adv"])
    objective = clipped.sum() / post["adv"].numel()
    penalty = kl(theta_old, theta, pre[0]["obs"]).mean()
    return -objective + KL_PENALTY * penalty


def task_stats(theta, theta_old, pre, post):
    """[J^CLIP − η·KL, KL, clipped fraction] of one task at θ (values only: no graph is kept)."""
    p = {k: v.detach().clone().requires_grad_(True) for k, v in theta.items()}
    for data in pre:
        p = inner_step(p, data, create_graph=False)
    with torch.no_grad():
        ratio = torch.exp(log_prob(p, post["obs"], post["act"]) - post["behaviour"])
        clipped = torch.minimum(ratio * post["adv"], torch.clamp(ratio, 1 - CLIP, 1 + CLIP) * post["adv"])
        penalty = kl(theta_old, theta, pre[0]["obs"]).mean()
        outside = ((ratio - 1).abs() > CLIP).double().mean()
        return [clipped.sum().item() / post["adv"].numel() - KL_PENALTY * penalty.item(), penalty.item(), outside.item()]


def loss_and_grads(theta, theta_old, tasks):
    """Σ_i loss_i / count with its gradient, one task's graph at a time."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in theta.items()}
    total = 0.0
    for pre, post in tasks:
        loss = task_loss(leaves, theta_old, pre, post) / len(tasks)
        loss.backward()
        total += loss.item()
    return total, {k: leaves[k].grad for k in NAMES}


class Reference:
    def __init__(self, req):
        torch.set_num_threads(int(req.get("threads", 1)))
        self.tasks, self.n = int(req["tasks"]), int(req["trajectories"])
        self.horizon, self.steps = int(req["horizon"]), int(req["steps"])
        self.rng = np.random.default_rng(int(req.get("seed", 1)))
        self.params = init_params(self.rng)
        self.m = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.t = 0

    def adam(self, params, grads):
        self.t += 1
        out = {}
        for k in NAMES:
            self.m[k] = 0.9 * self.m[k] + 0.1 * grads[k]
            self.v[k] = 0.999 * self.v[k] + 0.001 * grads[k] ** 2
            update = (self.m[k] / (1 - 0.9**self.t)) / (torch.sqrt(self.v[k] / (1 - 0.999**self.t)) + 1e-8)
            out[k] = params[k] - OUTER_LR * update
        return out

    def iterate(self):
        started = time.perf_counter()
        cpu_started = time.process_time()
        goals = CORNERS[self.rng.integers(0, 4, self.tasks)]
        levels, level_params = [], [[self.params] * self.tasks]
        sampling = adaptation = 0.0
        for j in range(self.steps + 1):
            s0 = time.perf_counter()
            obs, act, rew = sample(level_params[j], goals, self.n, self.horizon, self.rng)
            with torch.no_grad():
                behaviour = [log_prob(level_params[j][i], torch.from_numpy(obs[i]), torch.from_numpy(act[i])).numpy() for i in range(self.tasks)]
            levels.append([level_data(obs[i], act[i], advantages(obs[i], rew[i]), behaviour[i]) for i in range(self.tasks)])
            sampling += time.perf_counter() - s0
            if j == self.steps:
                break
            a0 = time.perf_counter()
            level_params.append([adapted(level_params[j][i], levels[j][i]) for i in range(self.tasks)])
            adaptation += time.perf_counter() - a0
        o0 = time.perf_counter()
        outer_cpu_started = time.process_time()
        tasks = [([levels[j][i] for j in range(self.steps)], levels[self.steps][i]) for i in range(self.tasks)]
        theta_old = {k: v.detach() for k, v in self.params.items()}
        current = theta_old
        for _ in range(PROMP_STEPS):
            _, grads = loss_and_grads(current, theta_old, tasks)
            current = self.adam(current, grads)
        self.params = {k: v.detach() for k, v in current.items()}
        after = np.mean([task_stats(self.params, theta_old, pre, post) for pre, post in tasks], axis=0)
        outer = time.perf_counter() - o0
        outer_cpu = time.process_time() - outer_cpu_started
        return {
            "cpu": time.process_time() - cpu_started,
            "outerCpu": outer_cpu,
            "sampling": sampling,
            "adaptation": adaptation,
            "outer": outer,
            "total": time.perf_counter() - started,
            "after": {"objective": float(after[0]), "kl": float(after[1]), "clipFraction": float(after[2])},
            "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def check(req):
    """The outer loss and gradient at `theta` (KL from `thetaOld`) on magicbox's batch, in float64."""
    with open(req["file"]) as f:
        batch = json.load(f)
    as64 = lambda d: {k: torch.tensor(v["values"], dtype=torch.float64).reshape(v["shape"]) for k, v in d.items()}
    theta, theta_old = as64(batch["theta"]), as64(batch["thetaOld"])

    def level(d):
        shape = d["shape"]
        return level_data(
            np.array(d["observations"], np.float64).reshape(*shape, -1),
            np.array(d["actions"], np.float64).reshape(*shape, -1),
            np.array(d["advantages"], np.float64).reshape(shape),
            np.array(d["behaviour"], np.float64).reshape(shape),
            dtype=torch.float64,
        )

    tasks = [([level(d) for d in task["pre"]], level(task["post"])) for task in batch["tasks"]]
    loss, grads = loss_and_grads(theta, theta_old, tasks)
    return {"loss": loss, "grads": {k: g.reshape(-1).tolist() for k, g in grads.items()}}


def kernels(req):
    """Seconds per call of the matrix products and the tanh of one hidden layer's step on `rows` rows,
    in float32 (as magicbox runs them): A·W, G·Wᵀ, Hᵀ·G and tanh (median of 7 timings of `calls`)."""
    torch.set_num_threads(int(req.get("threads", 1)))
    rows, width, calls = int(req["rows"]), int(req["width"]), int(req.get("calls", 200))
    gen = torch.Generator().manual_seed(1)
    a, g = torch.randn(rows, width, generator=gen), torch.randn(rows, width, generator=gen)
    w = torch.randn(width, width, generator=gen)

    def seconds(f):
        for _ in range(calls // 4):
            f()
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            times.append((time.perf_counter() - t0) / calls)
        return sorted(times)[3]

    return {
        "threads": torch.get_num_threads(),
        "matmul": seconds(lambda: a @ w),
        "matmulTransposed": seconds(lambda: g @ w.T),
        "weightGradient": seconds(lambda: a.T @ g),
        "tanh": seconds(lambda: torch.tanh(a)),
    }


def main():
    reference = None
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        if cmd == "init":
            reference = Reference(req)
            answer = {"ok": True, "torch": torch.__version__, "threads": torch.get_num_threads()}
        elif cmd == "iterate":
            answer = reference.iterate()
        elif cmd == "check":
            answer = check(req)
        elif cmd == "kernels":
            answer = kernels(req)
        elif cmd == "quit":
            break
        else:
            answer = {"error": f"unknown command {cmd}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
