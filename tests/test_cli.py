"""The command dispatcher: bad input is one line on stderr and exit code 2."""

import pytest

from robustlaw.cli import main


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("robustlaw: error:")
    assert len(err.strip().splitlines()) == 1


def test_version_prints_package_version(capsys):
    from robustlaw import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out
