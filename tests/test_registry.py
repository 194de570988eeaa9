"""The one way in (impls.core.registry): entry points, ad hoc specs, options, collisions, and
what happens when an implementation cannot import, construct, or express a network."""
import importlib.metadata
import textwrap

import pytest

from impls.core import registry as registry_module
from impls.core.errors import ConfigError, UnavailableError, UnsupportedError
from impls.core.registry import Entry, parse_spec, split_specs
from impls.core.spec import NetworkSpec
from impls.core.testing import create_or_skip

SPEC = NetworkSpec((6, 5, 4))
BUILT_IN = ["jax-cpu", "jax-cuda", "numba", "numba-blas", "numpy", "reference", "sklearn", "torch-compile-cpu",
            "torch-compile-cuda", "torch-ddp-cpu", "torch-ddp-cuda", "torch-fast-cpu", "torch-fast-cuda",
            "torch-idiomatic-cpu", "torch-idiomatic-cuda", "triton-fused-cuda"]

USER_MODULE = textwrap.dedent('''
    from impls import Implementation
    from impls.numpy_impl import NumpyNetwork

    class Configurable(NumpyNetwork):
        def __init__(self, spec, scale=1.0, label="x"):
            super().__init__(spec)
            self.scale, self.label = scale, label

    class Broken(NumpyNetwork):
        def __init__(self, spec):
            raise ValueError("no GPU context")

    class QuadraticOnly(NumpyNetwork):
        @classmethod
        def unsupported_reason(cls, spec, **options):
            return "softmax is not in this library" if spec.output != "sigmoid_quadratic" else None

    big = Implementation(Configurable, scale=2.5, label="big")
    not_a_network = object()
''')


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A registry built anew (after the test's changes), with a user module importable."""
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('needs a licence file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(registry_module.ENV, raising=False)
    monkeypatch.setattr(registry_module, "_registry", None)
    yield registry_module
    registry_module._registry = None


@pytest.mark.parametrize("text,name,target,options", [
    ("mynet:MyNetwork", "mynet:MyNetwork", "mynet:MyNetwork", {}),
    ("mine=pkg.net:Net", "mine", "pkg.net:Net", {}),
    ("pkg.net:Net(device='cuda', n=2)", "pkg.net:Net(device='cuda', n=2)", "pkg.net:Net", {"device": "cuda", "n": 2}),
    ("gpu = pkg.net:Outer.Inner(scale=0.5)", "gpu", "pkg.net:Outer.Inner", {"scale": 0.5}),
])
def test_spec_grammar(text, name, target, options):
    entry = parse_spec(text, "--impl")
    assert (entry.name, entry.target, entry.options) == (name, target, options)


@pytest.mark.parametrize("text,message", [
    ("numpy", "is not an implementation spec"),
    ("pkg.net:Net(2)", "options must be keyword=value"),
    ("pkg.net:Net(device=cuda)", "bad options"),
])
def test_bad_specs_are_config_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_spec(text, "--impl")


def test_specs_split_on_commas_outside_parentheses():
    assert split_specs("a=m:A(x=1, y=2), m:B ,") == ["a=m:A(x=1, y=2)", "m:B"]


@pytest.mark.parametrize("label", ["a,b)", "a)b,c", "(", "it's, (x"])
def test_a_quoted_option_may_hold_commas_and_parentheses(fresh, monkeypatch, label):
    """Before: a ")" inside a string option ended the options for the splitter, so
    `$NNBENCH_IMPLS` was rejected as not a spec (or swallowed the next spec)."""
    monkeypatch.setenv(registry_module.ENV, f"lab=usermod:Configurable(label={label!r}),plain=usermod:Configurable, "
                                            f'other=usermod:Configurable(label="{label}", scale=3)')
    assert fresh.create("lab", SPEC).label == label
    assert fresh.create("other", SPEC).label == label and fresh.create("other", SPEC).scale == 3
    assert fresh.create("plain", SPEC).label == "x"


def test_built_ins_come_from_the_entry_point_table(fresh):
    assert sorted(fresh.names()) == BUILT_IN
    for name in BUILT_IN:
        assert fresh.registry().entries[name].origin == "nnbench"


def test_every_built_in_cpu_implementation_imports_here(fresh):
    """A broken built-in module is a failure here, not a quiet 'unavailable'."""
    status = fresh.available()
    assert {n: status[n] for n in BUILT_IN if not n.endswith("cuda")} == {n: None for n in BUILT_IN
                                                                           if not n.endswith("cuda")}


def test_without_installed_metadata_the_checkout_declares_the_same(fresh, monkeypatch):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    assert sorted(fresh.names()) == BUILT_IN
    assert "pyproject.toml of nnbench (not installed)" in fresh.registry().entries["numpy"].source


def test_entry_point_to_an_implementation_passes_its_options(fresh, monkeypatch):
    entries = registry_module._entry_points() + [Entry("big", "usermod:big", "entry point 'big' of package 'u'")]
    monkeypatch.setattr(registry_module, "_entry_points", lambda: entries)
    net = fresh.create("big", SPEC)
    assert (net.name, net.scale, net.label) == ("big", 2.5, "big")


def test_ad_hoc_options_reach_the_constructor(fresh, monkeypatch):
    monkeypatch.setenv(registry_module.ENV, "small=usermod:Configurable(scale=0.5), usermod:Configurable")
    assert fresh.create("small", SPEC).scale == 0.5
    assert fresh.create("usermod:Configurable", SPEC).scale == 1.0
    name = fresh.register("usermod:Configurable(label='cli')", "--impl")
    assert fresh.create(name, SPEC).label == "cli"


def test_a_name_from_two_sources_is_an_error_naming_both(fresh, monkeypatch):
    monkeypatch.setenv(registry_module.ENV, "numpy=usermod:Configurable")
    with pytest.raises(ConfigError) as err:
        fresh.names()
    assert "'numpy' is declared twice" in str(err.value)
    assert "entry point 'numpy' of package 'nnbench'" in str(err.value) and "$NNBENCH_IMPLS" in str(err.value)


@pytest.mark.parametrize("target,reason", [
    ("raises_on_import:Net", "importing raises_on_import:Net raised RuntimeError: needs a licence file"),
    ("no_such_module_here:Net", "cannot import no_such_module_here:Net"),
    ("usermod:Missing", "cannot import usermod:Missing"),
    ("usermod:not_a_network", "is not a subclass of impls.Network"),
])
def test_what_cannot_load_is_unavailable_with_the_reason(fresh, target, reason):
    name = fresh.register(f"x={target}")
    assert reason in fresh.available()[name]
    assert fresh.available()["numpy"] is None                      # the others are untouched
    with pytest.raises(UnavailableError, match="is unavailable"):
        fresh.create(name, SPEC)


def test_a_constructor_that_fails_is_unavailable_and_never_a_skip(fresh):
    name = fresh.register("usermod:Broken")
    with pytest.raises(UnavailableError, match="failed to construct: ValueError: no GPU context"):
        create_or_skip(name, SPEC)


def test_declining_a_network_is_the_one_refusal_that_skips(fresh):
    name = fresh.register("usermod:QuadraticOnly")
    assert fresh.create(name, SPEC) is not None
    relu = NetworkSpec((6, 5, 4), "relu", "softmax_crossentropy")
    with pytest.raises(UnsupportedError, match="softmax is not in this library"):
        fresh.create(name, relu)
    with pytest.raises(pytest.skip.Exception, match="softmax is not in this library"):
        create_or_skip(name, relu)
    with pytest.raises(UnsupportedError, match="supports dtype float64, not float32"):
        fresh.create("reference", SPEC)
