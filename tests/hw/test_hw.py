"""Hardware presets compose from sub-groups and are validated."""

from __future__ import annotations

import pytest

import sieve.hw as hwmod
from sieve.hw import HardwareError, load


@pytest.mark.parametrize("name", hwmod.available())
def test_every_preset_loads(name):
    hw = load(name)
    assert hw.pim_channels_per_gpu > 0 and hw.pim_peak_flops_per_gpu > 0
    for source in (hw.gpu.source, hw.link.source, hw.memory.source, hw.pim.source):
        assert source


GPU_FACTORS = ("gemm_efficiency", "grouped_gemm_efficiency", "stream_efficiency")


@pytest.mark.parametrize("gpu", ["b200", "h100", "h200"])
def test_gpu_presets_have_documented_efficiencies(gpu):
    hw = load("aim", overrides=[f"hw/gpu={gpu}"])
    for key in GPU_FACTORS:
        assert 0 < getattr(hw.gpu, key) <= 1
    assert hw.gpu.kernel_launch_s >= 0
    # every efficiency and the launch cost carry their source or rationale in the comment above them
    lines = (hwmod.CONF_DIR / "hw" / "gpu" / f"{gpu}.yaml").read_text().splitlines()
    for key in (*GPU_FACTORS, "kernel_launch_s"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
        assert lines[at - 1].startswith("#"), f"{gpu}.yaml: {key} has no comment"


def test_paper_system():
    hw = load("aim")
    assert hw.gpu.name == "b200" and hw.gpu.bf16_flops == 2.25e15 and hw.gpu.hbm_bytes_per_s == 8e12
    assert hw.link.bytes_per_s_per_direction == 900e9 and hw.link.latency_s == 0.8e-6
    assert hw.memory.stacks == 8 and hw.pim_channels_per_gpu == 8 * 32
    assert hw.banks_per_pim_channel == 24 and hw.memory_bytes_per_gpu == 96 * 2**30
    # one all-bank MAC per tCCD_L (4 CK at 2 ticks per CK)
    assert hw.mac_interval_ticks == 2 * hw.standard.timing["nCCDL"]


def test_gddr6_aim_peak_is_1_tflops_per_chip():
    hw = load("gddr6_aim")
    chips = hw.pim_channels_per_gpu // 2  # two channels per GDDR6 chip
    assert hw.pim_peak_flops_per_gpu / chips == pytest.approx(1.024e12)


def test_compose_other_parts():
    hw = load("aim", overrides=["hw/gpu=h200", "hw/memory=hbm3", "hw/link=nvlink4"])
    assert (hw.gpu.name, hw.memory.standard, hw.link.name) == ("h200", "hbm3_aim", "nvlink4")


@pytest.mark.parametrize("overrides,message", [
    (["hw/gpu=h300"], "Could not find 'hw/gpu/h300'; Available options in 'hw/gpu': b200 h100 h200"),
    (["hw.gpu.bf16_flops=-1"], "hw.gpu.bf16_flops must be positive, got -1.0"),
    (["hw.gpu.flopz=1"], "Could not override 'hw.gpu.flopz'"),
    (["hw.gpu.gemm_efficiency=1.5"], "hw.gpu.gemm_efficiency must lie in (0, 1], got 1.5"),
    (["hw.gpu.grouped_gemm_efficiency=0"], "hw.gpu.grouped_gemm_efficiency must lie in (0, 1], got 0.0"),
    (["hw.gpu.stream_efficiency=-0.1"], "hw.gpu.stream_efficiency must lie in (0, 1], got -0.1"),
    (["hw.gpu.kernel_launch_s=-1e-6"], "hw.gpu.kernel_launch_s must be >= 0, got -1e-06"),
    (["hw.memory.standard=hbm3"], "hw.pim.commands.all_bank_activate = 'ACT16' is not a command of memory standard 'hbm3'"),
    (["hw.memory.standard=ddr9"], "unknown DRAM standard 'ddr9'"),
    (["hw.pim.mac_lanes_per_bank=12"], "mac_lanes_per_bank=12 must divide the 16 bf16 weights of a 32-byte column of hbm3e_aim"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(HardwareError) as e:
        load("aim", overrides=overrides)
    assert message in str(e.value)


def test_unknown_preset():
    with pytest.raises(HardwareError, match=r"unknown hardware preset 'aimx'; available: aim, gddr6_aim"):
        load("aimx")


@pytest.mark.parametrize("name", hwmod.available())
def test_presets_compose_alike_without_hydra(name):
    """The start-up path composes a preset from its plain group files; Hydra's composition is the reference."""
    plain = hwmod._compose_plain(name)
    assert plain is not None
    assert hwmod.from_config(plain) == hwmod.from_config(hwmod._compose(name, ()))


def _group_options():
    import yaml

    for group in ("gpu", "link", "memory", "pim"):
        for path in sorted((hwmod.CONF_DIR / "hw" / group).glob("*.yaml")):
            yield pytest.param(group, yaml.safe_load(path.read_text()), id=f"{group}/{path.stem}")


PARTS = {"gpu": hwmod.GPU, "link": hwmod.Link, "memory": hwmod.Memory, "pim": hwmod.PIMArch}


def _leaves(obj) -> list[tuple[str, type, object]]:
    import dataclasses

    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out += [(f"{f.name}.{k}", t, v) for k, t, v in _leaves(value)] if dataclasses.is_dataclass(value) \
            else [(f.name, type(value), value)]
    return out


@pytest.mark.parametrize("group, data", list(_group_options()))
def test_plain_group_files_validate_as_omegaconf_does(group, data):
    """Plain YAML values of the declared types are taken without loading OmegaConf; the object, down to each
    value's type (an int given for a float becomes a float), is the one OmegaConf's validation builds."""
    from omegaconf import OmegaConf

    plain = hwmod._plain_typed(PARTS[group], data)
    assert plain is not None
    assert _leaves(plain) == _leaves(hwmod._typed(PARTS[group], OmegaConf.create(data), group))


def test_values_that_need_converting_go_through_omegaconf():
    data = {"name": "m", "standard": "hbm3", "stacks": "4"}  # a string where an int is declared
    assert hwmod._plain_typed(hwmod.Memory, data) is None
    assert hwmod._typed(hwmod.Memory, data, "memory") == hwmod.Memory(name="m", standard="hbm3", stacks=4)
    with pytest.raises(HardwareError, match="hw.memory"):
        hwmod._typed(hwmod.Memory, {**data, "stacks": "many"}, "memory")
    with pytest.raises(HardwareError, match="hw.memory"):
        hwmod._typed(hwmod.Memory, {**data, "banks": 3}, "memory")
