"""Run a scenario's variants as tasks on a Dask cluster (``riskcore run SCENARIO --cluster ADDRESS``).

One task is one variant of the scenario (after its grid is expanded, ``path.seed`` included)
through its own price path.  A worker builds the variant's path and accounts, simulates them, computes the
read-outs, the account outcomes and the report's digest with the very functions a local run
calls (:meth:`riskcore.scenarios._OutputFolder.add_variant`'s), writes its share of each
table as one Parquet part into the run's temporary folder, and sends back only the small
:class:`~riskcore.report.VariantDigest`.  The client then writes the summary, the report,
``scenario.toml`` and ``run.json`` with the local run's own code and puts the folder in place
under the same all-or-nothing rules (:mod:`riskcore.output`).

The numbers do not depend on where or in which order tasks run: a variant's result is a
function of its settings only, digests are put back in the scenario's order, and each part
is named after its task (``part-00003.parquet`` is variant 3 wherever it ran), written under
a temporary name and renamed whole, so a task that is run again after its worker died
replaces its part rather than adding a second one.

What a cluster needs (``docs/cluster.md``): riskcore, the same version, importable on every
worker (tasks are the module-level functions of this module, sent by reference); the output
folder's parent on a filesystem every worker sees at the same path; and a numba cache per
host (``NUMBA_CACHE_DIR`` on a local disk).  Each worker compiles or loads the kernels once,
when it starts (:class:`WarmupPlugin`), never in a task.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path

from .errors import RiskcoreError
from .scenarios import OUTPUT_TABLES

try:  # the plugin's base class; without dask, only the checks of this module work
    from distributed.diagnostics.plugin import WorkerPlugin as _PluginBase
except ImportError:  # pragma: no cover - exercised by a test that hides dask
    _PluginBase = object

#: The tables a task writes, one part per task each (the local run writes one file of each).
TABLES = OUTPUT_TABLES
TASK_PHASES = ("build", "simulate", "read-outs", "write")
INSTALL_HINT = "pip install 'riskcore[cluster]' (or pip install 'dask[distributed]')"
#: Seconds to wait for a scheduler to answer before giving up (exit code 4).
CONNECT_TIMEOUT = 10.0


class ClusterError(RiskcoreError, ValueError):
    """The cluster cannot be used as given: a malformed address, dask missing, workers that run
    another riskcore, a worker that cannot see the output folder.  ``riskcore run`` exits 2."""


class ClusterUnreachable(RiskcoreError, ConnectionError):
    """No Dask scheduler answered at the address.  ``riskcore run`` exits 4 (network)."""


class ClusterFailed(RiskcoreError, RuntimeError):
    """A task could not be run to its end: its workers kept dying (out of memory, killed), or
    the cluster went away.  ``riskcore run`` exits 1; the output folder is as it was."""


# ----------------------------------------------------------------------- the address
@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """Where to run: ``local`` workers started here (``workers`` processes), or a scheduler at
    ``address``."""
    text: str
    workers: int | None = None
    address: str | None = None

    @property
    def is_local(self) -> bool:
        return self.address is None


_ADDRESS = re.compile(r"(tcp|tls|ws|wss)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


def parse_cluster(value, where: str = "--cluster") -> ClusterSpec:
    """Read a cluster setting: ``local:N`` (N worker processes on this machine, one thread
    each), ``local`` (one per core), or a scheduler address ``tcp://HOST:PORT`` (also
    ``tls://``, ``ws://``, ``wss://``).  ``where`` names the setting in the error."""
    if not isinstance(value, str):
        raise ClusterError(f"{where}: expected a string such as \"local:2\" or \"tcp://HOST:8786\", got {value!r}")
    text = value.strip()
    if text == "local":
        return ClusterSpec(text, workers=os.cpu_count() or 1)
    if text.startswith("local:"):
        n = text[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise ClusterError(f"{where}: {value!r}: local:N needs a whole number of worker processes >= 1, "
                               "e.g. local:2")
        return ClusterSpec(text, workers=int(n))
    m = _ADDRESS.fullmatch(text)
    if m is None:
        raise ClusterError(f"{where}: {value!r} is not a cluster: give local:N (N worker processes here) or a "
                           "Dask scheduler's address, tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786)")
    if not 1 <= int(m.group(3)) <= 65535:
        raise ClusterError(f"{where}: {value!r}: the port must be from 1 to 65535")
    return ClusterSpec(text, address=text)


def cluster_setting(scenario, given: str | None = None) -> ClusterSpec | None:
    """The cluster a run uses: ``given`` (``--cluster``; ``"off"`` runs here) before the
    scenario's ``[engine] cluster``; None to run in this process.  ``cluster`` set in a
    ``[[variants]]`` table is refused: it is the whole run's."""
    where = str(scenario.path)
    for i, var in enumerate(scenario.config.get("variants", [])):
        if "cluster" in (var.get("engine") or {}):
            raise ClusterError(f"{where}: variants[{i}].engine.cluster: where the run goes is set for the whole "
                               "run, in [engine], not per variant")
    if given is not None:
        return None if given.strip() == "off" else parse_cluster(given, "--cluster")
    value = scenario.config.get("engine", {}).get("cluster")
    if value is None or value == "off":
        return None
    return parse_cluster(value, f"{where}: engine.cluster")


def _distributed():
    try:
        import distributed
    except ImportError:
        distributed = None
    if distributed is None or _PluginBase is object:
        raise ClusterError(f"running on a cluster needs dask.distributed, which is not installed: {INSTALL_HINT}")
    return distributed


# ---------------------------------------------------------------------- the workers
def source_digest() -> str:
    """A digest of riskcore's sources: the client and every worker must agree on it, so that
    every variant is computed by the same code."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


_WARM_LOCK = threading.Lock()
_WARM: dict = {}


def ensure_warm() -> dict:
    """Compile (or load from the cache) every kernel a run calls, once per process: the first
    call does it, later calls return at once, concurrent ones wait for the first.  Processes
    of one host that share a numba cache take turns (a file lock in the cache folder), so the
    kernels are compiled once per host and loaded by the other workers."""
    with _WARM_LOCK:
        if _WARM:
            return dict(_WARM)
        from .kernels import warmup
        from .kernels.cache import cache_is_warm, numba_cache_folder

        t0 = time.perf_counter()
        with _host_lock(numba_cache_folder()):
            was_warm = cache_is_warm()
            info = warmup(tape=False)
        _WARM.update(seconds=time.perf_counter() - t0, compiled=info["compiled"], was_warm=was_warm,
                     pid=os.getpid(), host=socket.gethostname())
        return dict(_WARM)


@contextlib.contextmanager
def _host_lock(folder: Path):
    try:
        import fcntl

        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".riskcore-warmup.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError):  # no flock, or a read-only cache: each process compiles on its own
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class WarmupPlugin(_PluginBase):
    """A Dask worker plugin: when a worker starts (or joins the run), it loads or compiles
    riskcore's kernels (:func:`ensure_warm`) before it takes any task.  The work runs in a
    thread so that the worker keeps answering the scheduler while it compiles."""
    name = "riskcore-warmup"
    idempotent = True

    async def setup(self, worker):
        await asyncio.get_running_loop().run_in_executor(None, ensure_warm)


def worker_info() -> dict:
    """What the client checks of a worker (run there by ``client.run``)."""
    import numba

    from . import __version__
    from .kernels.cache import numba_cache_folder

    return {"host": socket.gethostname(), "pid": os.getpid(), "cpus": os.cpu_count(), "version": __version__,
            "sources": source_digest(), "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "cache": str(numba_cache_folder()), "warm": dict(_WARM)}


# ------------------------------------------------------------------------ one task
@dataclasses.dataclass
class TaskSpec:
    """One task: variant ``index`` (its place in the scenario), named ``name``, with its
    merged settings ``cfg``, written into the run's temporary folder ``out``."""
    index: int
    name: str
    scenario: object  # a riskcore.scenarios.Scenario holding this variant only
    cfg: dict
    out: str
    numba_threads: int | None = None


@dataclasses.dataclass
class TaskResult:
    """What a task sends back: the variant's digest and where and how long it ran."""
    index: int
    name: str
    digest: object  # riskcore.report.VariantDigest
    phases: dict
    kernel: float
    bars: int
    worker: str
    host: str
    pid: int
    numba_threads: int
    compiled: int  # kernels compiled during the task (0: the worker was warm)


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def variant_outputs(name: str, result, start_table) -> tuple[dict, object]:
    """The tables of one variant, with the ``variant`` column, and its digest:
    :func:`riskcore.scenarios.variant_outputs`, as the local run makes them."""
    from .scenarios import variant_outputs as outputs

    tables, digest = outputs(name, result, start_table)
    return {file: frame.assign(variant=name) for file, frame in tables.items()}, digest


def write_part(folder: Path, index: int, frame) -> Path:
    """Write ``frame`` as task ``index``'s part of the dataset ``folder`` (which must exist),
    as the local run writes a table (:func:`riskcore.scenarios._arrow`, text columns
    dictionary-encoded): under a temporary name first, then renamed whole, so that a reader
    never sees half a part and a task run twice leaves one part."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .scenarios import _arrow

    table = _arrow(frame)
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)]
    final = folder / part_name(index)
    temp = folder / f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        pq.write_table(table, temp, use_dictionary=text)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return final


_RUN_LOCK = threading.Lock()  # kernels of two tasks of one worker never run at once (see run_task)


def _current_worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def run_task(spec: TaskSpec) -> TaskResult:
    """Run one variant on a worker (or in this process) and write its parts; see the module's
    docstring.  A module-level function, so that Dask sends it to workers by name."""
    import numba

    from .kernels.compiling import CompileProgress
    from .scenarios import _simulate, _ticker, build_funding, build_paths, build_table

    out = Path(spec.out)
    worker = _current_worker()
    address = worker.address if worker is not None else "local"
    if not out.is_dir():
        who = f"worker {address}" if worker is not None else "this process"
        raise ClusterError(f"{who} on {socket.gethostname()} cannot see the run's temporary folder {out}: the "
                           "workers write the outputs into the output folder's parent, which must be on a shared "
                           "filesystem that every worker sees at the same path (docs/cluster.md); choose an --out "
                           "folder there")
    ensure_warm()
    nthreads = worker.state.nthreads if worker is not None else 1
    threads = spec.numba_threads or max(1, numba.config.NUMBA_NUM_THREADS // max(1, nthreads))
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)  # per calling thread: this task's kernels use this many
    phases = dict.fromkeys(TASK_PHASES, 0.0)
    scenario, cfg = spec.scenario, spec.cfg
    # two tasks of one worker (a worker with several threads) take turns in the kernels:
    # numba's default threading layer does not run two parallel kernels at once
    with (_RUN_LOCK if nthreads > 1 else contextlib.nullcontext()), \
            CompileProgress(0, lambda *a: None) as compiled:
        t0 = time.perf_counter()
        paths, _ = build_paths(scenario, cfg)
        table = build_table(scenario, cfg, paths)
        funding = build_funding(scenario, cfg, paths)
        phases["build"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        result = _simulate(scenario, cfg, table, paths, funding, _ticker(None))
        phases["simulate"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        frames, digest = variant_outputs(spec.name, result, table)
        phases["read-outs"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    for file, frame in frames.items():
        write_part(out / file, spec.index, frame)
    phases["write"] += time.perf_counter() - t0
    bars = len(next(iter(paths.values())))
    return TaskResult(spec.index, spec.name, digest, phases, float(result.timings.get("kernel", 0.0)), bars,
                      address, socket.gethostname(), os.getpid(), threads, compiled.done)


# -------------------------------------------------------------------- the client side
def _absolute_files(scenario, cfg: dict) -> dict:
    """``cfg`` with every data file it names replaced by the absolute path this process finds
    it at (:func:`riskcore.scenarios._resolve`), so that a worker started in another folder,
    or without this shell's ``RISKCORE_DATA_PATH``, reads the same file.  A file not found
    is left as written: the task reports it as a local run would."""
    from .scenarios import _resolve

    cfg = copy.deepcopy(cfg)

    def fix(table: dict, key: str) -> None:
        if isinstance(table, dict) and isinstance(table.get(key), str):
            found = _resolve(scenario, table[key])
            if found.exists():
                table[key] = str(found)

    for section in ("files", "source"):
        for symbol in list(cfg["path"].get(section, {})):
            fix(cfg["path"][section], symbol)
    for contract in cfg["market"]["contracts"].values():
        fix(contract.get("brackets", {}), "file")
    fix(cfg["population"], "file")
    fix(cfg.get("funding") or {}, "file")
    return cfg


def task_specs(scenario, out: Path, numba_threads: int | None = None) -> list[TaskSpec]:
    """One :class:`TaskSpec` per variant, in the scenario's order."""
    from .scenarios import Scenario

    path = Path(scenario.path).resolve()
    specs = []
    for i, (name, cfg) in enumerate(scenario.variants):
        cfg = _absolute_files(scenario, cfg)
        specs.append(TaskSpec(i, name, Scenario(path, scenario.config, [(name, cfg)]), cfg, str(out), numba_threads))
    return specs


@contextlib.contextmanager
def connect(spec: ClusterSpec, timeout: float | None = None):
    """A ``distributed.Client`` for ``spec``: a new ``LocalCluster`` of ``spec.workers``
    processes with one thread each (closed at the end), or the scheduler at ``spec.address``
    (:class:`ClusterUnreachable` when none answers within ``timeout`` seconds)."""
    distributed = _distributed()
    import logging

    timeout = CONNECT_TIMEOUT if timeout is None else timeout

    if spec.is_local:
        # each worker runs its kernels on its share of the cores (numba reads this at start)
        threads = max(1, (os.cpu_count() or 1) // spec.workers)
        cluster = distributed.LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.ERROR,
                                           env={"NUMBA_NUM_THREADS": str(threads)})
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(spec.address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise ClusterUnreachable(f"{spec.address}: no Dask scheduler answered within {timeout:g} s "
                                 f"({exc.__class__.__name__}: {exc}); is the scheduler running, and is its "
                                 "address and port reachable from here?") from None
    try:
        yield client
    finally:
        client.close()


def prepare_workers(client, timeout: float = 600.0) -> dict:
    """Check the workers and warm them: every worker must run this riskcore (the same sources),
    then :class:`WarmupPlugin` is registered, which loads or compiles the kernels on every
    worker now and on any worker that joins later, before it takes a task.  Returns
    ``{address: worker_info()}`` after the warm-up."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterFailed(f"the cluster has no worker (waited {timeout:g} s)") from None
    here = source_digest()
    try:
        infos = client.run(worker_info)
    except (ImportError, ModuleNotFoundError) as exc:
        raise ClusterError(f"a worker cannot import riskcore ({exc}): install riskcore, the same version, where "
                           "the workers run (docs/cluster.md)") from None
    from . import __version__

    for address, info in infos.items():
        if info["sources"] != here:
            raise ClusterError(f"worker {address} on {info['host']} runs other riskcore sources (version "
                               f"{info['version']}, digest {info['sources']}) than this client (version "
                               f"{__version__}, digest {here}): every worker must run the same riskcore, or the "
                               "variants would not be computed by the same code")
    client.register_plugin(WarmupPlugin(), name=WarmupPlugin.name)
    return client.run(worker_info)


def _clean_parts(tmp: Path, n: int) -> None:
    """After the tasks: drop the temporary files of attempts that died (they are ours), check
    that every task left its part of every table, and give every part the first part's
    schema, as the local run's writer casts every variant to the first's."""
    import pyarrow.parquet as pq

    for file in TABLES:
        folder = tmp / file
        for leftover in folder.glob(".part-*.tmp"):
            leftover.unlink(missing_ok=True)
        parts = [folder / part_name(i) for i in range(n)]
        missing = [p.name for p in parts if not p.is_file()]
        extra = sorted(set(p.name for p in folder.iterdir()) - {p.name for p in parts})
        if missing or extra:
            raise ClusterFailed(f"{folder}: the tasks left {', '.join(missing) or 'no missing part'} missing and "
                                f"{', '.join(extra) or 'no other file'} extra")
        first = pq.read_schema(parts[0])
        for part in parts[1:]:
            if pq.read_schema(part) != first:
                table = pq.read_table(part).cast(first)
                text = [f.name for f in first if str(f.type).startswith(("string", "dictionary"))]
                write_tmp = part.with_name(f".{part.name}.cast.tmp")
                pq.write_table(table, write_tmp, use_dictionary=text)
                os.replace(write_tmp, part)


def run_on_cluster(scenario, out_dir, cluster, progress_factory=None, *, force: bool = False, before_run=None,
                   client=None, say=None, task=run_task, timeout: float | None = None, numba_threads: int | None = None):
    """:func:`riskcore.scenarios.run_to_folder` with the variants run as tasks on a Dask cluster.

    ``cluster`` is a :class:`ClusterSpec`, a setting :func:`parse_cluster` reads
    (``"local:2"``, ``"tcp://HOST:8786"``), or None with ``client`` (a connected
    ``distributed.Client``, left open).  The outputs are those of a local run, with each
    table of the variants (events, steps, final positions and accounts, outcomes) written
    as a folder of Parquet parts, one per variant (``events.parquet/part-00000.parquet``),
    which pandas, pyarrow and dask read as one table; ``summary.parquet``, the report,
    ``scenario.toml`` and ``run.json`` are the local run's, and ``cluster.json`` says where
    each variant ran.  ``say(text)`` receives status lines; ``task`` runs a
    :class:`TaskSpec` on a worker (a module-level function).

    Returns (folder, summary, phase times summed over the tasks, price source)."""
    from .scenarios import (RunTimes, Scenario, _OutputFolder, build_all_paths, check_variants, load_scenario)

    say = say or (lambda text: None)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    check_variants(scenario)
    if client is None:
        spec = cluster if isinstance(cluster, ClusterSpec) else parse_cluster(cluster)
        _distributed()
    times = RunTimes()
    started = time.perf_counter()
    t0 = time.perf_counter()
    # every variant's path, built here too: to check them all before any task is sent, and for
    # the report (the tasks build their own from their settings)
    path_set = build_all_paths(scenario)
    price_source = path_set.price_source(scenario)
    times.add("build", time.perf_counter() - t0)
    with _OutputFolder(out_dir, times, force) as out:
        if before_run is not None:
            before_run(out.place)
        specs = task_specs(scenario, out.tmp, numba_threads)
        for file in TABLES:
            (out.tmp / file).mkdir()
        with (contextlib.nullcontext(client) if client is not None else connect(spec, timeout)) as c:
            t0 = time.perf_counter()
            infos = prepare_workers(c)
            warm = [i["warm"] for i in infos.values()]
            say(f"{len(infos)} worker(s) ready in {time.perf_counter() - t0:.1f} s (kernels "
                + ("compiled" if any(w.get("compiled") for w in warm) else "loaded from the cache") + ")")
            results = _run_tasks(c, specs, task, progress_factory)
        _clean_parts(out.tmp, len(specs))
        for r in results:
            for phase, seconds in r.phases.items():
                times.add(phase, seconds)
            times.kernel += r.kernel
        out.digests.update((r.name, r.digest) for r in results)
        (out.tmp / "cluster.json").write_text(json.dumps({
            "cluster": spec.text if client is None else str(c.scheduler.address),
            "workers": {a: {k: i[k] for k in ("host", "pid", "cpus", "numba_threads", "cache")}
                        for a, i in infos.items()},
            "tasks": [{"variant": r.name, "part": part_name(r.index), "worker": r.worker, "host": r.host,
                       "pid": r.pid, "numba_threads": r.numba_threads, "kernels_compiled": r.compiled,
                       "phases": {k: round(v, 3) for k, v in r.phases.items()}} for r in results],
        }, indent=2) + "\n")
        summary = out.finish(scenario, path_set.first[0], price_source, time.perf_counter() - started, path_set)
    return Path(out_dir), summary, times, price_source


def _run_tasks(client, specs: list[TaskSpec], task, progress_factory) -> list[TaskResult]:
    """Submit every task, gather the results in the scenario's order; the first error cancels
    the others and is raised (a worker that died is replaced and its task run again by Dask;
    a task whose workers keep dying raises :class:`ClusterFailed`)."""
    import distributed

    run_id = uuid.uuid4().hex[:8]
    futures = [client.submit(task, s, key=f"riskcore-{run_id}-{s.index:05d}", pure=False) for s in specs]
    advance = None
    results: dict[int, TaskResult] = {}
    try:
        for future in distributed.as_completed(futures):
            try:
                r = future.result()
            except distributed.client.FutureCancelledError as exc:
                raise ClusterFailed(f"the task of variant {specs[futures.index(future)].name!r} was cancelled "
                                    f"({exc}); did the cluster shut down?") from None
            except distributed.KilledWorker as exc:
                name = specs[futures.index(future)].name
                raise ClusterFailed(f"variant {name!r}: every worker that ran it died ({exc}); out of memory "
                                    "(give the workers more, or run fewer accounts), or killed") from None
            results[r.index] = r
            if progress_factory is not None:
                if advance is None:
                    advance = progress_factory(r.bars * len(specs)) or (lambda n: None)
                advance(r.bars)
    except BaseException:
        client.cancel(futures)
        raise
    return [results[s.index] for s in specs]
