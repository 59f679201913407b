"""A stand-in chapter for tests of the registry's users (CLI, sweeps), without a folder under kdutils/chapters."""
def install_fake_chapter(monkeypatch, name: str, **fields):
    """Register a stand-in chapter `kdutils.chapters.<name>` for one test: a module holding a `CHAPTER` with
    the given fields (the rest are inert), listed by the registry as if its folder existed."""
    import sys
    import types

    from kdutils.report import chapter as registry

    defaults = dict(name=name, order=99, paper="Someone (2020)", title="A stand-in", page=f"notebooks/{name}",
                    pages=(f"notebooks/{name}",), experiments=(name,), claims=("a claim",),
                    recipe=lambda profile: None, run_all=lambda profile="cpu": [], verdicts=lambda profile: [])
    module = types.ModuleType(f"{registry.CHAPTERS_PACKAGE}.{name}")
    module.CHAPTER = registry.Chapter(**{**defaults, **fields})
    monkeypatch.setitem(sys.modules, module.__name__, module)
    known = registry.names()
    monkeypatch.setattr(registry, "names", lambda: sorted({*known, name}))
    return module
