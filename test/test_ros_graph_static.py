"""The ROS 2 graph checked without ROS: where ROS may be imported, that everything else imports
without it, that node modules and launch files compile and pass a lint, that the launch files
start executables that exist with parameters the nodes declare and parameter files that
exist, and that the parameter files match the nodes' parameter specs."""

from __future__ import annotations

import ast
import builtins
import importlib
import py_compile
import subprocess
import symtable
import sys
import textwrap
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sim_bridge", "latent_policy_node", "genrl_ros")
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
CONFIG_DIR = ROOT / "config"
#: imported only in nodes/ modules and launch files
ROS_ONLY = {"rclpy", "launch", "launch_ros", "rcl_interfaces", "ament_index_python"}
#: message packages: in nodes/ modules, or lazily inside a ``from_rclpy`` factory
MESSAGE_PACKAGES = {
    "action_msgs",
    "builtin_interfaces",
    "control_msgs",
    "genrl_interfaces",
    "geometry_msgs",
    "rosgraph_msgs",
    "sensor_msgs",
    "std_msgs",
    "std_srvs",
    "trajectory_msgs",
}


def package_files(package: str) -> list[Path]:
    base = ROOT / "src" / package / package
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def node_files() -> list[Path]:
    return [p for pkg in PACKAGES for p in package_files(pkg) if "nodes" in p.parts]


def module_name(path: Path) -> str:
    package = path.relative_to(ROOT / "src").parts[0]
    rel = path.relative_to(ROOT / "src" / package).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(tree: ast.AST):
    """(top-level module, enclosing function name or None, line) of every import."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], function, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], function, child.lineno))
            visit(child, function)

    visit(tree, None)
    return found


# --------------------------------------------------------------------------- where ROS lives


def test_ros_is_imported_only_in_nodes_and_launch_files():
    offenders = []
    for package in PACKAGES:
        for path in package_files(package):
            if "nodes" in path.parts:
                continue
            for module, function, line in imports(ast.parse(path.read_text(), str(path))):
                where = f"{path.relative_to(ROOT)}:{line} imports {module}"
                if module in ROS_ONLY:
                    offenders.append(where)
                elif module in MESSAGE_PACKAGES and function != "from_rclpy":
                    offenders.append(f"{where} (outside a from_rclpy factory)")
    assert not offenders, "\n".join(offenders)
    assert node_files(), "no nodes/ modules found"


def test_every_module_but_the_nodes_imports_without_ros():
    modules = [
        module_name(p) for pkg in PACKAGES for p in package_files(pkg) if "nodes" not in p.parts
    ]
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys
        BLOCKED = {sorted(ROS_ONLY | MESSAGE_PACKAGES)!r}

        class NoRos(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is not available (no ROS here)")
                return None

        sys.meta_path.insert(0, NoRos())
        for module in {modules!r}:
            importlib.import_module(module)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print(len({modules!r}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) == len(modules) > 30


# --------------------------------------------------------------------------- compile and lint


def lint(path: Path) -> list[str]:
    """A small pyflakes: names read but never bound (module, builtins) and imports never used."""
    source = path.read_text()
    table = symtable.symtable(source, str(path), "exec")
    module_names = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    module_names |= {s.get_name() for s in table.get_symbols() if s.is_namespace()}
    known = module_names | set(dir(builtins)) | {"__file__", "__name__", "__doc__"}
    problems, used = [], set()

    def walk(scope):
        for symbol in scope.get_symbols():
            name = symbol.get_name()
            if symbol.is_referenced():
                used.add(name)
            if (
                symbol.is_referenced()
                and (symbol.is_global() or scope.get_type() == "module")
                and not symbol.is_assigned()
                and not symbol.is_imported()
                and name not in known
            ):
                problems.append(f"{path.name}: undefined name {name!r} in {scope.get_name()}")
        for child in scope.get_children():
            walk(child)

    walk(table)
    tree = ast.parse(source)
    # annotations are not compiled under `from __future__ import annotations`: read them
    annotations = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
    for annotation in annotations:
        for node in ast.walk(annotation):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    used |= {
                        n.id for n in ast.walk(ast.parse(node.value)) if isinstance(n, ast.Name)
                    }
                except SyntaxError:
                    pass
    exported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            exported |= {ast.literal_eval(e) for e in node.value.elts}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (
            isinstance(node, ast.ImportFrom) and node.module == "__future__"
        ):
            for alias in node.names:
                name = (alias.asname or alias.name).split(".")[0]
                line = source.splitlines()[node.lineno - 1]
                if name not in used and name not in exported and "noqa" not in line:
                    problems.append(f"{path.name}:{node.lineno}: {name!r} imported but unused")
    return problems


def checked_files() -> list[Path]:
    mine = [
        "sim_bridge/sim_bridge/trajectory_action.py",
        "sim_bridge/sim_bridge/sim_session.py",
        "sim_bridge/sim_bridge/node_params.py",
        "sim_bridge/sim_bridge/ros_image_conversions.py",
        "sim_bridge/sim_bridge/ros_outcome_conversions.py",
        "latent_policy_node/latent_policy_node/policy_runner.py",
        "latent_policy_node/latent_policy_node/latent_conversions.py",
        "genrl_ros/genrl_ros/trajectory_generator.py",
        "genrl_ros/genrl_ros/demo_playback.py",
        "genrl_ros/genrl_ros/node_params.py",
        "genrl_ros/genrl_ros/graph_trainer.py",
    ]
    safety = sorted((ROOT / "src/genrl_ros/genrl_ros/safety").glob("*.py"))
    return node_files() + LAUNCH_FILES + [ROOT / "src" / m for m in mine] + safety


def test_nodes_launch_files_and_components_compile_and_lint(tmp_path):
    problems = []
    for path in checked_files():
        py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)
        problems += lint(path)
    assert not problems, "\n".join(problems)


def test_pyflakes_if_available():
    pyflakes = pytest.importorskip("pyflakes.api")
    from pyflakes.reporter import Reporter

    class Collect(Reporter):
        def __init__(self):
            self.messages = []

        def flake(self, message):
            self.messages.append(str(message))

        def unexpectedError(self, filename, msg):  # noqa: N802 (pyflakes API)
            self.messages.append(f"{filename}: {msg}")

        def syntaxError(self, filename, msg, lineno, offset, text):  # noqa: N802
            self.messages.append(f"{filename}:{lineno}: {msg}")

    reporter = Collect()
    for path in checked_files():
        pyflakes.checkPath(str(path), reporter)
    assert not reporter.messages, "\n".join(reporter.messages)


def test_lint_finds_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nimport sys\n\n\ndef f():\n    return undefined_thing + sys.maxsize\n"
    )
    problems = lint(bad)
    assert any("undefined name 'undefined_thing'" in p for p in problems)
    assert any("'os' imported but unused" in p for p in problems)
    assert not any("'sys'" in p for p in problems)


# --------------------------------------------------------------------------- entry points


def console_scripts(package: str) -> dict[str, str]:
    tree = ast.parse((ROOT / "src" / package / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            scripts = ast.literal_eval(node.value)["console_scripts"]
            return dict(s.replace(" ", "").split("=", 1) for s in scripts)
    return {}


NODE_EXECUTABLES = {
    ("sim_bridge", "sim_bridge_node"): "sim_bridge.nodes.sim_bridge_node",
    ("latent_policy_node", "latent_policy_node"): "latent_policy_node.nodes.latent_policy_node",
    ("genrl_ros", "trajectory_generator_node"): "genrl_ros.nodes.trajectory_generator_node",
    ("genrl_ros", "safety_monitor_node"): "genrl_ros.nodes.safety_monitor_node",
    ("genrl_ros", "demo_player_node"): "genrl_ros.nodes.demo_player_node",
    ("genrl_ros", "trainer_node"): "genrl_ros.nodes.trainer_node",
}


def test_node_entry_points_exist_and_nodes_are_thin_classes_with_main():
    for (package, executable), module in NODE_EXECUTABLES.items():
        assert console_scripts(package)[executable] == f"{module}:main"
        path = ROOT / "src" / package / Path(*module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text())
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
        assert "main" in functions, path
        assert len(classes) == 1 and classes[0].bases[0].id == "Node", path
        init = next(f for f in classes[0].body if getattr(f, "name", "") == "__init__")
        calls = {
            n.func.id
            for n in ast.walk(init)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert "declare_params" in calls, f"{path}: parameters are declared in __init__"
        main = next(n for n in tree.body if getattr(n, "name", "") == "main")
        main_calls = {ast.unparse(n.func) for n in ast.walk(main) if isinstance(n, ast.Call)}
        assert {"rclpy.init", "executor.spin", "rclpy.try_shutdown"} <= main_calls, path
        assert "MultiThreadedExecutor" in main_calls, path
        # RcutilsLogger.warn is deprecated in Jazzy in favour of warning
        assert ".warn(" not in path.read_text(), path


def test_genrl_ros_installs_launch_and_config():
    setup = (ROOT / "src/genrl_ros/setup.py").read_text()
    assert '_shared("launch", "*.launch.py")' in setup and '_shared("config", "*.yaml")' in setup
    assert "data/srv/*.srv" in setup
    assert [p.name for p in LAUNCH_FILES] == [
        "deploy.launch.py",
        "record_demos.launch.py",
        "sim_training.launch.py",
    ]


# --------------------------------------------------------------------------- parameter files


def node_specs():
    from genrl_ros.graph_trainer import TRAINER_PARAMS
    from genrl_ros.node_params import DEMO_PLAYER_PARAMS, GENERATOR_PARAMS, SAFETY_MONITOR_PARAMS
    from latent_policy_node.policy_runner import POLICY_NODE_PARAMS
    from sim_bridge.node_params import SIM_BRIDGE_PARAMS

    return {
        ("sim_bridge", "sim_bridge_node"): ("sim_bridge.yaml", "sim_bridge", SIM_BRIDGE_PARAMS),
        ("latent_policy_node", "latent_policy_node"): (
            "latent_policy.yaml",
            "latent_policy",
            POLICY_NODE_PARAMS,
        ),
        ("genrl_ros", "trajectory_generator_node"): (
            "trajectory_generator.yaml",
            "trajectory_generator",
            GENERATOR_PARAMS,
        ),
        ("genrl_ros", "safety_monitor_node"): (
            "safety_monitor.yaml",
            "safety_monitor",
            SAFETY_MONITOR_PARAMS,
        ),
        ("genrl_ros", "demo_player_node"): ("demo_player.yaml", "demo_player", DEMO_PLAYER_PARAMS),
        ("genrl_ros", "trainer_node"): ("trainer.yaml", "trainer", TRAINER_PARAMS),
    }


def test_parameter_files_match_the_node_specs():
    from genrl_ros.config import load_ros_params, node_names
    from sim_bridge.node_params import check_params

    for config, node, specs in node_specs().values():
        path = CONFIG_DIR / config
        assert node_names(path) == [node], path
        values = load_ros_params(path, node)
        check_params(specs, values)  # strict types, ranges, no unknown names
        assert set(values) == {s.name for s in specs}, f"{config} should list every parameter"


# --------------------------------------------------------------------------- launch files


class Recorded:
    """Stand-in for any launch / launch_ros class: records how it was constructed."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __repr__(self):
        return f"{type(self).__name__}{self.args}{self.kwargs}"


def stub_modules() -> dict[str, types.ModuleType]:
    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": [
            "DeclareLaunchArgument",
            "ExecuteProcess",
            "RegisterEventHandler",
            "SetEnvironmentVariable",
            "Shutdown",
        ],
        "launch.conditions": ["IfCondition", "UnlessCondition"],
        "launch.event_handlers": ["OnProcessExit"],
        "launch.substitutions": [
            "EqualsSubstitution",
            "IfElseSubstitution",
            "LaunchConfiguration",
            "PathJoinSubstitution",
        ],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
        "launch_ros.parameter_descriptions": ["ParameterValue"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    modules = {}
    for module, classes in names.items():
        stub = types.ModuleType(module)
        for cls in classes:
            setattr(stub, cls, type(cls, (Recorded,), {}))
        modules[module] = stub
    return modules


def describe(path: Path, monkeypatch) -> list[Recorded]:
    for name, module in stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert type(description).__name__ == "LaunchDescription"
    return list(description.args[0])


def launch_configurations(value) -> set[str]:
    """Names of the LaunchConfigurations a (nested) substitution uses."""
    if isinstance(value, Recorded):
        if type(value).__name__ == "LaunchConfiguration":
            return {value.args[0]}
        found = set()
        for item in (*value.args, *value.kwargs.values()):
            found |= launch_configurations(item)
        return found
    if isinstance(value, (list, tuple)):
        return set().union(*(launch_configurations(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(launch_configurations(v) for v in value.values())) if value else set()
    return set()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_start_real_executables_with_declared_parameters(path, monkeypatch):
    entities = describe(path, monkeypatch)
    declared = {e.args[0] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    used = launch_configurations(entities)
    assert used <= declared, f"undeclared launch arguments {used - declared}"
    specs = node_specs()
    nodes = [e for e in entities if type(e).__name__ == "Node"]
    assert nodes
    for node in nodes:
        key = (node.kwargs["package"], node.kwargs["executable"])
        if key == ("rqt_image_view", "rqt_image_view"):
            assert type(node.kwargs["condition"]).__name__ == "UnlessCondition"
            continue
        config, name, node_specs_ = specs[key]
        assert node.kwargs["name"] == name
        files, overrides = node.kwargs["parameters"]
        assert type(files).__name__ == "PathJoinSubstitution"
        share, folder, filename = files.args[0]
        assert share.args == ("genrl_ros",) and folder == "config" and filename == config
        assert (CONFIG_DIR / filename).is_file()
        names = {s.name for s in node_specs_} | {"use_sim_time"}
        assert set(overrides) <= names, f"{path.name}: {set(overrides) - names}"
        for source, _ in node.kwargs.get("remappings", []):
            assert source in {"episode_outcome", "camera/image_raw", "contact_wrench"}


def test_record_demos_records_the_bag_topics(monkeypatch):
    from genrl_ros.data.rosbag_io import TOPIC_TYPES

    entities = describe(ROOT / "launch/record_demos.launch.py", monkeypatch)
    (record,) = [e for e in entities if type(e).__name__ == "ExecuteProcess"]
    cmd = record.kwargs["cmd"]
    assert cmd[:7] == ["ros2", "bag", "record", "--storage", "mcap", "--output", cmd[6]]
    assert cmd[7] == "--topics" and set(cmd[8:]) == set(TOPIC_TYPES)
    (handler,) = [e for e in entities if type(e).__name__ == "RegisterEventHandler"]
    on_exit = handler.args[0]
    assert on_exit.kwargs["target_action"].kwargs["executable"] == "demo_player_node"
    assert type(on_exit.kwargs["on_exit"][0]).__name__ == "Shutdown"


def test_deploy_hardware_has_no_simulator(monkeypatch):
    entities = describe(ROOT / "launch/deploy.launch.py", monkeypatch)
    (sim,) = [
        e for e in entities if getattr(e, "kwargs", {}).get("executable") == "sim_bridge_node"
    ]
    condition = sim.kwargs["condition"]
    assert type(condition).__name__ == "IfCondition"
    equals = condition.args[0]
    assert equals.args[0].args == ("driver",) and equals.args[1] == "sim"
    (monitor,) = [
        e for e in entities if getattr(e, "kwargs", {}).get("executable") == "safety_monitor_node"
    ]
    overrides = monitor.kwargs["parameters"][1]
    assert overrides["controller_action"].args == ("controller_action",)
    assert type(overrides["contact_source"]).__name__ == "IfElseSubstitution"


def test_sim_training_with_the_trainer(monkeypatch):
    """train:=true adds the trainer node (and ends the launch when it ends); sim_bridge stops
    auto-resetting and the generator stops executing the policy's latents, so that the
    trainer's episodes are the only ones; the trainer's default names are the other nodes'."""
    entities = describe(ROOT / "launch/sim_training.launch.py", monkeypatch)
    by_executable = {
        e.kwargs["executable"]: e for e in entities if type(e).__name__ == "Node"
    }
    trainer = by_executable["trainer_node"]
    assert type(trainer.kwargs["condition"]).__name__ == "IfCondition"
    assert trainer.kwargs["condition"].args[0].args == ("train",)
    overrides = trainer.kwargs["parameters"][1]
    assert overrides["model_path"].args[0].args == ("model",)
    for executable, name in (("sim_bridge_node", "auto_reset"),
                             ("trajectory_generator_node", "execute")):
        value = by_executable[executable].kwargs["parameters"][1][name]
        switch = value.args[0]
        assert type(switch).__name__ == "IfElseSubstitution", executable
        assert switch.args[0].args == ("train",)
        assert (switch.kwargs["if_value"], switch.kwargs["else_value"]) == ("false", "true")
    (handler,) = [e for e in entities if type(e).__name__ == "RegisterEventHandler"]
    assert handler.kwargs["condition"].args[0].args == ("train",)
    on_exit = handler.args[0]
    assert on_exit.kwargs["target_action"] is trainer
    assert type(on_exit.kwargs["on_exit"][0]).__name__ == "Shutdown"

    from genrl_ros.graph_trainer import TRAINER_PARAMS
    from genrl_ros.node_params import GENERATOR_NODE, SAFETY_MONITOR_PARAMS
    from latent_policy_node.policy_runner import POLICY_NODE
    from sim_bridge.node_params import SIM_BRIDGE_NODE, defaults

    trainer_defaults = defaults(TRAINER_PARAMS)
    assert trainer_defaults["reset_service"] == f"/{SIM_BRIDGE_NODE}/reset_scene"
    assert trainer_defaults["action_name"] == defaults(SAFETY_MONITOR_PARAMS)["action_name"]
    assert trainer_defaults["policy_node"] == f"/{POLICY_NODE}"
    generator_source = (ROOT / "src/genrl_ros/genrl_ros/nodes/trajectory_generator_node.py").read_text()
    assert '"generate_trajectory"' in generator_source and GENERATOR_NODE == "trajectory_generator"
    assert trainer_defaults["decode_service"] == "/generate_trajectory"
