"""A strict fake of Nuke's ``nuke`` and ``nukescripts`` modules: exactly the surface the plug-in calls.

Names, argument shapes and return types follow the Nuke Python reference (learn.foundry.com,
``nuke`` and ``nukescripts`` modules, 13-16), with the behaviour plug-ins trip over:

- Nodes, knobs, menus, panels and ``nuke.message`` belong to Nuke's main thread. Touching one
  from another thread raises ``RuntimeError`` here *and* is recorded in
  :attr:`NukeHost.violations`, so a plug-in that swallows the error is still caught.
- ``nuke.executeInMainThread(call, args=(), kwargs={})`` queues the call and returns at once
  (a non-tuple ``args`` becomes a 1-tuple, as Nuke's own implementation does). The queue runs
  only when the test pumps it (:meth:`NukeHost.pump`): that loop is Nuke's event loop. An
  exception in a queued call is printed by Nuke and the loop goes on; here it is recorded in
  :attr:`NukeHost.errors`.
- ``nuke.ProgressTask`` is made for worker threads (Foundry's threading example uses it there).
- ``node['nope']`` raises ``NameError``; an unknown attribute ``AttributeError``; a knob value of
  the wrong type ``TypeError``; an enumeration value that is not one of its items ``ValueError``.
- ``nuke.filename(node)`` returns the file knob's text (``None`` when empty); ``nuke.toNode``
  returns ``None`` for an unknown name; ``nuke.menu`` ``None`` for an unknown menu.

Reads model what a Read shows (:meth:`NukeHost.file_frame_shown`): ``frame_mode`` ``expression``
with an empty ``frame`` shows file frame f at frame f, ``start at`` S shows ``first`` at S,
``offset`` O shows f at f + O, and frames outside ``first``..``last`` hold the nearest one
(Foundry: "Changing the Relation Between the Current Frame and the Frame Read In").
"""

from __future__ import annotations

import queue
import threading
import time
import types
from collections.abc import Callable
from typing import Any

__all__ = ["NukeHost"]


class NukeHost:
    """The Nuke session around the fake modules: its main thread, event queue, script and user."""

    def __init__(self) -> None:
        self.main_thread = threading.current_thread()
        self.calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = queue.Queue()
        self.nodes: list[Node] = []
        self.messages: list[str] = []
        self.violations: list[str] = []
        self.errors: list[str] = []
        self.ran: list[str] = []  # names of the queued calls the main loop ran, in order
        self.progress_tasks: list[ProgressTask] = []
        self.cancel_new_tasks = False  # the user presses Cancel on every progress bar as it appears
        self.panels: list[Any] = []
        self.menus = {"Nuke": Menu(self, "Nuke"), "Nodes": Menu(self, "Nodes")}
        self.env = {"gui": True, "studio": False, "nukex": False, "hiero": False, "ple": False, "indie": False}
        self._counters: dict[str, int] = {}
        self.root = Root(self)
        self.nuke = self._nuke_module()
        self.nukescripts = self._nukescripts_module()

    # -- the test's side --------------------------------------------------------------------------

    def pump(self, until: Callable[[], bool], timeout_s: float) -> None:
        """Run queued main-thread calls, as Nuke's event loop does, until ``until()`` holds."""
        self.require_main("the event loop")
        deadline = time.monotonic() + timeout_s
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s; ran {self.ran[-5:]}, errors {self.errors}")
            try:
                call, args, kwargs = self.calls.get(timeout=0.05)
            except queue.Empty:
                continue
            self.ran.append(getattr(call, "__qualname__", repr(call)))
            try:
                call(*args, **kwargs)
            except Exception as err:  # Nuke prints a failing queued call's traceback and goes on
                self.errors.append(f"{self.ran[-1]}: {type(err).__name__}: {err}")

    def add_node(self, node_class: str, **knobs: Any) -> Node:
        """A node the user made (the script before the plug-in runs)."""
        return getattr(self.nuke.nodes, node_class)(**knobs)

    def select(self, *nodes: Node) -> None:
        for node in self.nodes:
            node._selected = node in nodes

    def command(self, menu: str, path: str) -> Callable[[], Any]:
        """The command behind a menu item, as a click runs it."""
        return self.menus[menu].items[path]

    def press(self, panel: Any, knob_name: str) -> None:
        """The user presses a panel's button (``knobChanged`` with that knob, in the main thread)."""
        self.require_main("a panel")
        if panel not in self.panels:
            raise AssertionError("the panel was never shown")
        panel.knobChanged(panel.knobs()[knob_name])

    def node(self, name: str) -> Node:
        (found,) = [n for n in self.nodes if n._name == name]
        return found

    def value_of(self, node: Node, knob: str) -> Any:
        """A knob's value, as the test sees it (no thread check)."""
        return node._values[knob]

    def input_of(self, node: Node, i: int) -> Node | None:
        return node._inputs.get(i)

    def position_of(self, node: Node) -> tuple[int, int]:
        return node._x, node._y

    def class_of(self, node: Node) -> str:
        return node._class

    def name_of(self, node: Node) -> str:
        return node._name

    def file_frame_shown(self, read: Node, frame: int) -> int:
        """The file frame number a Read shows at timeline ``frame``."""
        first, last = self.value_of(read, "first"), self.value_of(read, "last")
        mode, offset = self.value_of(read, "frame_mode"), self.value_of(read, "frame").strip()
        if mode == "start at":
            number = frame - int(offset) + first
        elif mode == "offset":
            number = frame - int(offset or "0")
        elif offset:
            raise NotImplementedError(f"frame expression {offset!r}")
        else:
            number = frame
        return min(max(number, first), last)

    def require_main(self, what: str) -> None:
        thread = threading.current_thread()
        if thread is not self.main_thread:
            self.violations.append(f"{what} from thread {thread.name!r}")
            raise RuntimeError(f"{what} touched from thread {thread.name!r}, not Nuke's main thread")

    # -- the modules ------------------------------------------------------------------------------

    def _new_name(self, node_class: str) -> str:
        self._counters[node_class] = self._counters.get(node_class, 0) + 1
        return f"{node_class}{self._counters[node_class]}"

    def _nuke_module(self) -> types.ModuleType:
        host = self
        module = types.ModuleType("nuke", "fake nuke (tests/fakes/nuke.py)")

        def selectedNodes(filter: str | None = None) -> list[Node]:  # noqa: N802, A002 (Nuke's names)
            host.require_main("nuke.selectedNodes")
            _check(filter, (str, type(None)), "selectedNodes(filter)")
            return [n for n in host.nodes if n._selected and (filter is None or n._class == filter)]

        def allNodes(filter: str | None = None) -> list[Node]:  # noqa: N802, A002
            host.require_main("nuke.allNodes")
            _check(filter, (str, type(None)), "allNodes(filter)")
            return [n for n in host.nodes if filter is None or n._class == filter]

        def toNode(name: str) -> Node | Root | None:  # noqa: N802
            host.require_main("nuke.toNode")
            _check(name, str, "toNode(name)")
            if name == "root":
                return host.root
            return next((n for n in host.nodes if n._name == name), None)

        def root() -> Root:
            host.require_main("nuke.root")
            return host.root

        def filename(node: Node, i: int | None = None) -> str | None:
            host.require_main("nuke.filename")
            _check(node, Node, "filename(node)")
            if i is not None:
                raise TypeError("filename(node, i): this fake has no REPLACE")
            return node._values.get("file") or None

        def message(prompt: str) -> None:
            host.require_main("nuke.message")
            _check(prompt, str, "message(prompt)")
            host.messages.append(prompt)

        def executeInMainThread(call: Callable[..., Any], args: Any = (), kwargs: Any = None) -> None:  # noqa: N802
            if not callable(call):
                raise TypeError(f"executeInMainThread: {call!r} is not callable")
            kwargs = {} if kwargs is None else kwargs
            _check(kwargs, dict, "executeInMainThread(kwargs)")
            host.calls.put((call, args if isinstance(args, tuple) else (args,), kwargs))

        def menu(name: str) -> Menu | None:
            host.require_main("nuke.menu")
            _check(name, str, "menu(name)")
            return host.menus.get(name)

        nodes = types.SimpleNamespace(**{cls: _creator(host, cls) for cls in NODE_CLASSES})

        def progress_task(name: str) -> ProgressTask:
            task = ProgressTask(name)
            task.cancelled = host.cancel_new_tasks
            host.progress_tasks.append(task)
            return task

        def knob_maker(kind: type[_PanelKnob]) -> Callable[..., _PanelKnob]:
            def make(name: str, label: str | None = None, value: str | None = None) -> _PanelKnob:
                host.require_main(f"nuke.{kind.__name__}")
                return kind(host, name, label, value)

            make.__name__ = kind.__name__
            return make

        for name, value in {
            "selectedNodes": selectedNodes, "allNodes": allNodes, "toNode": toNode, "root": root,
            "filename": filename, "message": message, "executeInMainThread": executeInMainThread,
            "menu": menu, "nodes": nodes, "ProgressTask": progress_task, "env": host.env,
            "Text_Knob": knob_maker(Text_Knob), "PyScript_Knob": knob_maker(PyScript_Knob),
        }.items():  # fmt: skip
            setattr(module, name, value)
        return module

    def _nukescripts_module(self) -> types.ModuleType:
        host = self

        class PythonPanel:
            """``nukescripts.PythonPanel(title='', id='', scrollable=True)``: knobs, ``show()``, ``knobChanged``."""

            def __init__(self, title: str = "", id: str = "", scrollable: bool = True) -> None:  # noqa: A002
                host.require_main("nukescripts.PythonPanel")
                _check(title, str, "PythonPanel(title)")
                _check(id, str, "PythonPanel(id)")
                self.__knobs: dict[str, _PanelKnob] = {}

            def addKnob(self, knob: _PanelKnob) -> None:  # noqa: N802
                host.require_main("PythonPanel.addKnob")
                _check(knob, _PanelKnob, "addKnob(knob)")
                self.__knobs[knob.name()] = knob

            def knobs(self) -> dict[str, _PanelKnob]:
                host.require_main("PythonPanel.knobs")
                return dict(self.__knobs)

            def knobChanged(self, knob: _PanelKnob) -> None:  # noqa: N802
                pass

            def show(self) -> None:
                host.require_main("PythonPanel.show")
                if self not in host.panels:
                    host.panels.append(self)

        module = types.ModuleType("nukescripts", "fake nukescripts (tests/fakes/nuke.py)")
        module.PythonPanel = PythonPanel
        return module


def _check(value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) and kind in (int, (int,)) or not isinstance(value, kind):
        raise TypeError(f"{what}: {type(value).__name__} {value!r} where Nuke wants {kind}")


# -- knobs -----------------------------------------------------------------------------------------


class _KnobSpec:
    """A knob class: what its setValue takes and what value() gives."""

    def __init__(self, kind: str, default: Any, items: tuple[str, ...] = ()) -> None:
        self.kind, self.default, self.items = kind, default, items

    def coerce(self, value: Any, what: str) -> Any:
        if self.kind in ("File_Knob", "String_Knob", "Channel_Knob"):
            _check(value, str, what)
            if self.kind == "Channel_Knob" and value != "none" and "." not in value:
                raise ValueError(f"{what}: {value!r} is not a channel (layer.channel)")
            return value
        if self.kind == "Int_Knob":
            _check(value, int, what)
            return value
        if self.kind == "Boolean_Knob":
            if not isinstance(value, bool | int):
                raise TypeError(f"{what}: {type(value).__name__} {value!r} where Nuke wants a bool")
            return bool(value)
        if self.kind == "Enumeration_Knob":
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.items):
                return self.items[value]
            if isinstance(value, str) and value in self.items:
                return value
            raise ValueError(f"{what}: {value!r} is not one of {self.items}")
        raise AssertionError(self.kind)


def _enum(*items: str) -> _KnobSpec:
    return _KnobSpec("Enumeration_Knob", items[0], items)


_READ_KNOBS = {
    "file": _KnobSpec("File_Knob", ""), "first": _KnobSpec("Int_Knob", 1), "last": _KnobSpec("Int_Knob", 1),
    "origfirst": _KnobSpec("Int_Knob", 1), "origlast": _KnobSpec("Int_Knob", 1),
    "before": _enum("hold", "loop", "bounce", "black"), "after": _enum("hold", "loop", "bounce", "black"),
    "frame_mode": _enum("expression", "start at", "offset"), "frame": _KnobSpec("String_Knob", ""),
    "raw": _KnobSpec("Boolean_Knob", False), "premultiplied": _KnobSpec("Boolean_Knob", False),
    "label": _KnobSpec("String_Knob", ""),
}  # fmt: skip
NODE_CLASSES: dict[str, tuple[dict[str, _KnobSpec], int]] = {
    # class: (knobs, inputs); Copy's inputs are B (0), A (1) and the mask (2)
    "Read": (_READ_KNOBS, 0),
    "Copy": ({f"{d}{i}": _KnobSpec("Channel_Knob", "none") for d in ("from", "to") for i in range(4)}
             | {"label": _KnobSpec("String_Knob", "")}, 3),
    "Premult": ({"channels": _KnobSpec("Channel_Knob", "rgba.red"), "alpha": _KnobSpec("Channel_Knob", "rgba.alpha"),
                 "label": _KnobSpec("String_Knob", "")}, 1),
    "Grade": ({"label": _KnobSpec("String_Knob", "")}, 2),
}  # fmt: skip
#: Node sizes in the node graph (a Read with its postage stamp is taller).
_SIZES = {"Read": (80, 78)}


class Knob:
    """A node's knob: ``name()``, ``value()``, ``setValue(v)``; main thread only."""

    def __init__(self, node: Node, name: str, spec: _KnobSpec) -> None:
        self._node, self._name, self._spec = node, name, spec

    def name(self) -> str:
        self._node._main(f"['{self._name}'].name")
        return self._name

    def value(self) -> Any:
        self._node._main(f"['{self._name}'].value")
        return self._node._values[self._name]

    def setValue(self, value: Any) -> bool:  # noqa: N802
        self._node._main(f"['{self._name}'].setValue")
        self._node._values[self._name] = self._spec.coerce(value, f"{self._node._name}['{self._name}'].setValue")
        return True


class _PanelKnob:
    def __init__(self, host: NukeHost, name: str, label: str | None, value: str | None) -> None:
        _check(name, str, f"{type(self).__name__}(name)")
        _check(label, (str, type(None)), f"{type(self).__name__}(label)")
        _check(value, (str, type(None)), f"{type(self).__name__}(value)")
        self._host, self._name, self._label, self._value = host, name, label, value or ""

    def name(self) -> str:
        self._host.require_main(f"knob {self._name}")
        return self._name

    def value(self) -> str:
        self._host.require_main(f"knob {self._name}")
        return self._value

    def setValue(self, value: str) -> None:  # noqa: N802
        self._host.require_main(f"knob {self._name}.setValue")
        _check(value, str, f"{self._name}.setValue")
        self._value = value


class Text_Knob(_PanelKnob):  # noqa: N801 (Nuke's name)
    """``nuke.Text_Knob(name, label, text)``: text shown in a panel."""


class PyScript_Knob(_PanelKnob):  # noqa: N801
    """``nuke.PyScript_Knob(name, label, command)``: a button."""


# -- nodes -----------------------------------------------------------------------------------------


class Node:
    """A node of the root group, with the knobs of its class."""

    def __init__(self, host: NukeHost, node_class: str) -> None:
        self._host, self._class = host, node_class
        self._specs, self._max_inputs = NODE_CLASSES[node_class]
        self._values = {name: spec.default for name, spec in self._specs.items()}
        self._inputs: dict[int, Node] = {}
        self._selected = False
        self._name = host._new_name(node_class)
        self._x, self._y = 0, 0

    def _main(self, what: str) -> None:
        self._host.require_main(f"{self._name}.{what}")

    def Class(self) -> str:  # noqa: N802
        self._main("Class")
        return self._class

    def name(self) -> str:
        self._main("name")
        return self._name

    def fullName(self) -> str:  # noqa: N802
        self._main("fullName")
        return self._name  # the root group's nodes have no prefix

    def __getitem__(self, name: str) -> Knob:
        self._main(f"['{name}']")
        _check(name, str, "node[name]")
        if name not in self._specs:
            raise NameError(f"knob {name} does not exist")
        return Knob(self, name, self._specs[name])

    def setInput(self, i: int, node: Node | None) -> bool:  # noqa: N802
        self._main("setInput")
        _check(i, int, "setInput(i)")
        _check(node, (Node, type(None)), "setInput(node)")
        if not 0 <= i < self._max_inputs:
            return False  # Nuke refuses an input the node does not have
        if node is None:
            self._inputs.pop(i, None)
        else:
            self._inputs[i] = node
        return True

    def input(self, i: int) -> Node | None:
        self._main("input")
        _check(i, int, "input(i)")
        return self._inputs.get(i)

    def xpos(self) -> int:
        self._main("xpos")
        return self._x

    def ypos(self) -> int:
        self._main("ypos")
        return self._y

    def setXYpos(self, x: int, y: int) -> None:  # noqa: N802
        self._main("setXYpos")
        _check(x, int, "setXYpos(x)")
        _check(y, int, "setXYpos(y)")
        self._x, self._y = x, y

    def screenWidth(self) -> int:  # noqa: N802
        self._main("screenWidth")
        return _SIZES.get(self._class, (80, 18))[0]

    def screenHeight(self) -> int:  # noqa: N802
        self._main("screenHeight")
        return _SIZES.get(self._class, (80, 18))[1]

    def __repr__(self) -> str:
        return f"<{self._class} {self._name}>"


def _creator(host: NukeHost, node_class: str) -> Callable[..., Node]:
    def create(**knobs: Any) -> Node:
        host.require_main(f"nuke.nodes.{node_class}")
        node = Node(host, node_class)
        for name, value in knobs.items():
            node[name].setValue(value)
        host.nodes.append(node)
        return node

    create.__name__ = node_class
    return create


class Root:
    """``nuke.root()``: the root group; ``with nuke.root():`` makes new nodes there."""

    def __init__(self, host: NukeHost) -> None:
        self._host = host

    def __enter__(self) -> Root:
        self._host.require_main("with nuke.root()")
        return self

    def __exit__(self, *exc: object) -> None:
        self._host.require_main("with nuke.root()")


# -- UI --------------------------------------------------------------------------------------------


class Menu:
    """``nuke.menu('Nuke')`` (menu bar) or ``nuke.menu('Nodes')`` (toolbar): ``addCommand``."""

    def __init__(self, host: NukeHost, name: str) -> None:
        self._host, self._name = host, name
        self.items: dict[str, Callable[[], Any]] = {}

    def addCommand(self, name: str, command: Callable[[], Any] | str | None = None, shortcut: str = "",  # noqa: N802
                   icon: str = "", tooltip: str = "", index: int = -1, readonly: bool = False) -> Menu:  # fmt: skip
        self._host.require_main(f"menu {self._name}.addCommand")
        _check(name, str, "addCommand(name)")
        for what, value in (("shortcut", shortcut), ("icon", icon), ("tooltip", tooltip)):
            _check(value, str, f"addCommand({what})")
        _check(index, int, "addCommand(index)")
        if not (callable(command) or isinstance(command, str)):
            raise TypeError(f"addCommand({name!r}): command {command!r} is neither a callable nor a string")
        if isinstance(command, str):
            raise NotImplementedError("this fake runs callable commands only")
        self.items[name] = command
        return self


class ProgressTask:
    """``nuke.ProgressTask(name)``: any thread; ``setMessage``, ``setProgress``, ``isCancelled``."""

    def __init__(self, name: str) -> None:
        _check(name, str, "ProgressTask(name)")
        self.title = name
        self.messages: list[str] = []
        self.progress: list[int] = []
        self.cancelled = False  # the user pressed Cancel (the test sets it)

    def setMessage(self, s: str) -> None:  # noqa: N802
        _check(s, str, "ProgressTask.setMessage")
        self.messages.append(s)

    def setProgress(self, i: int) -> None:  # noqa: N802
        _check(i, int, "ProgressTask.setProgress")
        if not 0 <= i <= 100:
            raise ValueError(f"ProgressTask.setProgress({i}): outside 0..100")
        self.progress.append(i)

    def isCancelled(self) -> bool:  # noqa: N802
        return self.cancelled
