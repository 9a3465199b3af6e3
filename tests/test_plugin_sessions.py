"""The pytest plugin as users meet it: real pytest sessions run by ``pytester``.

Each session is a handful of small tests; the sessions run in this process (cheap) except
where xdist starts its workers.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mailsink import Server

from .processes import mailsink_process

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")

# Every inner session runs as strictly as ours: an unregistered marker or a warning fails it.
STRICT = ("-p", "no:cacheprovider", "--strict-markers", "-W", "error")

HELPERS = """
import smtplib

def send(sink, subject, to="bob@example.test", rcpt=None):
    with smtplib.SMTP(sink.host, sink.port) as smtp:
        smtp.sendmail(
            "app@acme.test", rcpt or [to],
            f"From: app@acme.test\\r\\nTo: {to}\\r\\nSubject: {subject}\\r\\n\\r\\nhello\\r\\n".encode(),
        )
"""


def test_fixture_marker_isolation_and_failure_output(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(
        test_inner="""
        import smtplib
        import pytest
        from helpers import send

        PORTS = []

        def test_sends(mailsink):
            send(mailsink, "one")
            send(mailsink, "two")
            assert [m.subject for m in mailsink.messages] == ["one", "two"]
            PORTS.append(mailsink.port)

        def test_next_test_sees_none_of_it(mailsink):
            assert mailsink.messages == []
            PORTS.append(mailsink.port)

        @pytest.mark.mailsink(max_message_size=200)
        def test_marked_gets_its_own_server(mailsink):
            assert mailsink.port not in PORTS
            with pytest.raises(smtplib.SMTPResponseException) as refused:
                send(mailsink, "x" * 300)
            assert refused.value.smtp_code == 552
            send(mailsink, "small")
            assert mailsink.last.subject == "small"

        @pytest.mark.mailsink(max_message_size=200)
        class TestMarkedClass:
            @pytest.mark.mailsink(hostname="inner.test")
            def test_nearest_marker_wins_and_merges(self, mailsink):
                with smtplib.SMTP(mailsink.host, mailsink.port) as smtp:
                    assert b"inner.test" in smtp.ehlo()[1]
                    assert "200" in smtp.esmtp_features["size"]

        def test_session_server_again(mailsink):
            assert mailsink.messages == []
            assert mailsink.port == PORTS[0] == PORTS[1]

        @pytest.mark.mailsink(no_such_setting=1)
        def test_unknown_setting(mailsink):
            pass

        def test_assert_sent_fails_readably(mailsink):
            send(mailsink, "Reset your password", to="ann@example.test")
            send(mailsink, "Welcome!", to="ann@example.test")
            mailsink.assert_sent(to="bob@example.test", subject="Welcome!")

        def test_wait_for_times_out_readably(mailsink):
            send(mailsink, "Receipt")
            mailsink.wait_for(2, timeout=0.01)
        """
    )
    result = pytester.runpytest(*STRICT, "-v")
    result.assert_outcomes(passed=5, failed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_unknown_setting*",
            "*@pytest.mark.mailsink: unknown setting no_such_setting; settings are: smtp, *",
            "*_ test_assert_sent_fails_readably _*",
            "E       AssertionError: no message was sent with to='bob@example.test', "
            "subject='Welcome!'; 2 messages captured, closest first:",
            "E           #     to                    subject",
            "E           want    'bob@example.test'    'Welcome!'",
            "E           2     ✗ 'ann@example.test'  ✓ 'Welcome!'",
            "E           1     ✗ 'ann@example.test'  ✗ 'Reset your password'",
            "*_ test_wait_for_times_out_readably _*",
            "E       mailsink.testing.assertions.WaitTimeout: timed out after 0.01 s waiting for "
            "2 messages: 1 matched; 1 message captured:",
            "E           #  from             to                  subject",
            "E           1  'app@acme.test'  'bob@example.test'  'Receipt'",
        ]
    )
    # The library's own frames are hidden: the traceback ends in the test.
    assert "inbox.py" not in result.stdout.str()


def test_xdist_workers_each_have_a_server_and_see_only_their_tests_mail(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(
        test_parallel="""
        import os
        from pathlib import Path
        import pytest
        from helpers import send

        @pytest.mark.parametrize("n", range(8))
        def test_own_mail_only(mailsink, n):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            assert mailsink.messages == []
            send(mailsink, f"{worker} {n}")
            [mail] = mailsink.wait_for(timeout=30)
            assert mail.subject == f"{worker} {n}"
            Path(__file__).with_name(f"server-{worker}-{n}").write_text(str(mailsink.port))
        """
    )
    result = pytester.runpytest(*STRICT, "-n", "2")
    result.assert_outcomes(passed=8)
    servers = {(p.name.split("-")[1], p.read_text()) for p in pytester.path.glob("server-*")}
    workers = {worker for worker, _ in servers}
    ports = {port for _, port in servers}
    assert workers == {"gw0", "gw1"}, result.stdout.str()
    assert len(ports) == 2  # one server per worker, each on its own free port


def test_remote_mode_keeps_parallel_tests_apart_by_address(pytester: pytest.Pytester) -> None:
    args = ("--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0")
    with mailsink_process(*args) as (_, bound):
        smtp_host, smtp_port = bound["SMTP"]
        url = "http://{}:{}".format(*bound["HTTP"])
        with smtplib.SMTP(smtp_host, smtp_port) as smtp:
            smtp.sendmail("x@acme.test", ["bob@example.test"], b"Subject: outsider\r\n\r\nx\r\n")
        pytester.makepyfile(helpers=HELPERS)
        pytester.makepyfile(
            test_remote=f"""
            import threading
            import pytest
            from helpers import send

            @pytest.mark.parametrize("n", range(6))
            def test_sees_only_its_own_mail(mailsink, n):
                assert mailsink.server is None and mailsink.url == {url!r}
                assert mailsink.messages == []
                me = mailsink.address("bob")
                send(mailsink, f"mine {{n}}", to=me)
                send(mailsink, "to a stranger", to="bob@example.test")
                later = threading.Thread(target=send, args=(mailsink, f"later {{n}}", me))
                later.start()
                found = mailsink.wait_for(2, timeout=30)
                later.join()
                assert [m.subject for m in found] == [f"mine {{n}}", f"later {{n}}"]
                mailsink.assert_sent(to=me, subject=f"later {{n}}")
                mailsink.assert_not_sent(subject="to a stranger")
                if n % 2:
                    mailsink.clear()
                    assert mailsink.messages == []

            @pytest.mark.mailsink(hostname="own.test")
            def test_marked_test_gets_an_in_process_server(mailsink):
                assert mailsink.server is not None
            """
        )
        result = pytester.runpytest(
            *STRICT,
            "-n",
            "2",
            f"--mailsink-url={url}",
            f"--mailsink-smtp-url=smtp://{smtp_host}:{smtp_port}",
        )
        result.assert_outcomes(passed=7)
        listing = httpx.get(f"{url}/api/v1/messages", params={"limit": 100}).json()
    subjects = sorted(m["Subject"] for m in listing["messages"])
    # The server was never emptied: the outsider and every stranger's mail are still there,
    # and the mail of the three tests that did not clear.
    assert subjects.count("outsider") == 1 and subjects.count("to a stranger") == 6
    assert sorted(s for s in subjects if s.startswith(("mine", "later"))) == [
        "later 0",
        "later 2",
        "later 4",
        "mine 0",
        "mine 2",
        "mine 4",
    ]


def test_remote_mode_never_shows_the_password_in_its_url(
    pytester: pytest.Pytester, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    users = tmp_path / "users.htpasswd"
    users.write_text("ci:s3cret-pw\n")
    remote = make_server(ui_auth_file=str(users))
    host, port = remote.http_address or ("", 0)
    url = f"http://ci:s3cret-pw@{host}:{port}"
    pytester.makepyfile(
        test_remote="""
        def test_repr_hides_the_password(mailsink):
            assert mailsink.messages == []  # the login in the URL works
            print("REPR", repr(mailsink))
        """
    )
    result = pytester.runpytest(*STRICT, "-s", f"--mailsink-url={url}")
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert f"using the running server at http://ci:***@{host}:{port}" in output
    assert f"REPR <mailsink smtp://{host}:1025 (http://ci:***@{host}:{port})>" in output
    assert "s3cret-pw" not in output


def test_remote_mode_says_where_to_send_when_nothing_arrived(
    pytester: pytest.Pytester, make_server: Callable[..., Server]
) -> None:
    remote = make_server()
    host, port = remote.http_address or ("", 0)
    smtp_host, smtp_port = remote.smtp_address
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(
        test_remote="""
        from helpers import send

        def test_sent_to_a_fixed_address(mailsink):
            send(mailsink, "Welcome", to="bob@example.test")  # not mailsink.address(...)
            mailsink.assert_sent(subject="Welcome")

        def test_waited_for_a_fixed_address(mailsink):
            send(mailsink, "Welcome", to="bob@example.test")
            mailsink.wait_for(subject="Welcome", timeout=0)

        def test_sent_to_its_own_address(mailsink):
            send(mailsink, "Other", to=mailsink.address("ann"))
            mailsink.assert_sent(subject="Welcome")
        """
    )
    result = pytester.runpytest(
        *STRICT,
        f"--mailsink-url=http://{host}:{port}",
        f"--mailsink-smtp-url=smtp://{smtp_host}:{smtp_port}",
    )
    result.assert_outcomes(failed=3)
    # The failures' own reports (the "E" lines), not the summary, whose width varies.
    out = "\n".join(line for line in result.stdout.lines if line.startswith("E "))
    hint = (
        f"Against the server at http://{host}:{port}, this test sees only mail to its own "
        "addresses, mailsink.address(...) (such as 'user+"
    )
    # Both tests that captured nothing get the hint; the one that captured mail does not.
    assert out.count("no mail was captured at all. " + hint) == 2
    assert out.count(hint) == 2
