# SPDX-License-Identifier: MIT
"""`dip mpirun` on one machine picks shared memory without probing network transports. Left to
choose, Open MPI 4.1 probes UCX (and PSM, OFI) in every rank's MPI_Init: 0.35 s of each rank's
start-up here, against 0.12 s with `--mca pml ob1 --mca osc ^ucx` (measured with a bare
MPI_Init_thread program), a fixed cost that a one-worker cluster pays on top of the local
executor. So with no host list, no batch system's allocation and no choice of the user's,
`dip mpirun` adds those two options; with a host list (a remote host may have InfiniBand, where
UCX is the fast path) or the user's own `--mca pml|osc|mtl` or OMPI_MCA_pml/osc/mtl it adds
nothing. Checked through what the ranks receive (Open MPI hands `--mca K V` to each rank as
OMPI_MCA_K), and a real job through it gives the local executor's bytes.

Each rank also sets TCP_NODELAY on its connection to the PMIx server (mpirun here): PMIx talks
over TCP on the loopback with Nagle's algorithm on, and MPI_Finalize's two small messages in a
row waited for the server's delayed ACK, 40 ms in every rank (0.15 -> 0.11 s for a bare MPI
program under mpirun; ../shared/notes/openmpi-4.1-pmix-nagle.md). Checked through the line each
rank logs at --log-level 3 (how many sockets it set, and the server's address from
PMIX_SERVER_URI*): one each."""
import os
import subprocess

from mpiutil import DIP, MPIEXEC, check, env, make_images, run_local, same_outputs, tmpdir

d = tmpdir()
SHOW = ["sh", "-c", 'echo "rank=$OMPI_COMM_WORLD_RANK pml=$OMPI_MCA_pml osc=$OMPI_MCA_osc"']


def launch(args, **extra):
    e = env(DIP_MPIRUN=MPIEXEC, **extra)
    for k in ("SLURM_JOB_NODELIST", "PBS_NODEFILE", "LSB_HOSTS", "LSB_MCPU_HOSTS", "PE_HOSTFILE",
              "OMPI_MCA_orte_default_hostfile"):
        e.pop(k, None)  # a batch system's allocation counts as several hosts
    for k in ("OMPI_MCA_pml", "OMPI_MCA_osc", "OMPI_MCA_mtl"):
        if k not in extra:
            e.pop(k, None)
    r = subprocess.run([DIP, "mpirun", "--allow-run-as-root", "--oversubscribe", *args],
                       capture_output=True, text=True, errors="backslashreplace", timeout=200,
                       env=e)
    return r, r.stdout + r.stderr


def ranks_see(args, **extra):
    r, text = launch([*args, "-np", "2", *SHOW], **extra)
    lines = sorted(l for l in r.stdout.splitlines() if l.startswith("rank="))
    check(len(lines) == 2, "two ranks should answer", text)
    return [l.split(" ", 1)[1] for l in lines], text


seen, text = ranks_see([])
check(seen == ["pml=ob1 osc=^ucx"] * 2, "one machine: ob1 and no UCX expected: %s" % seen, text)

hosts = os.path.join(d, "hosts")
with open(hosts, "w") as f:
    f.write("localhost slots=2\n")
seen, text = ranks_see(["--hostfile", hosts])
check(seen == ["pml= osc="] * 2, "a host list: Open MPI's own choice expected: %s" % seen, text)

seen, text = ranks_see(["--mca", "osc", "pt2pt"])
check(seen == ["pml= osc=pt2pt"] * 2, "the user's --mca osc: nothing added: %s" % seen, text)

seen, text = ranks_see([], OMPI_MCA_pml="ob1")
check(seen == ["pml=ob1 osc="] * 2, "the user's OMPI_MCA_pml: nothing added: %s" % seen, text)

# A real job through it: the local executor's bytes, dip's status.
inputs = make_images(os.path.join(d, "in"), 6, 320, 240, seed=7)
pipe = "gaussian(size=5) | equalize | sharpen"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "cluster") + "/"
r, text = launch(["--mca", "btl", "self,vader,tcp", "-np", "2", DIP, "process", "-t", "2",
                  "--log-level", "3", "-p", pipe, "-o", out, *inputs])
check(r.returncode == 0, "dip mpirun exited %d" % r.returncode, text)
nodelay = [l for l in text.splitlines() if "TCP_NODELAY on" in l]
check(len(nodelay) == 2 and all("on 1 connection(s) to the PMIx server 127.0.0.1:" in l
                                 for l in nodelay),
      "each rank should set TCP_NODELAY on its one PMIx connection: %s" % nodelay, text)
check(not same_outputs(os.path.join(d, "local"), out), "outputs differ from the local run", text)
print("ok: one machine gets ob1 without UCX; host lists and the user's choices are left alone; "
      "each rank's PMIx connection has TCP_NODELAY")
