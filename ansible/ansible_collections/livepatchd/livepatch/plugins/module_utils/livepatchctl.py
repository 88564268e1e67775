# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-2.0-only
#
# The modules' one way to livepatchd: `livepatchctl --json` (docs/user-guide.md). Its JSON uses
# the D-Bus property names (docs/dbus-api.md); a call the service refused exits 1, prints
# "livepatchctl: MESSAGE" on stderr and, with --json, {"Error": NAME, "Message": MESSAGE} on
# stdout, NAME being livepatchd's named error (org.livepatchd.LivePatch1.Error.NotTopPatch, ...).

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import time

ERROR_PREFIX = 'org.livepatchd.LivePatch1.Error.'

# A patch's State while its transition runs (docs/user-guide.md, Inspect).
MOVING_STATES = ('applying', 'reverting')


class LivepatchctlError(Exception):
    """livepatchctl failed: error is livepatchd's error name without its prefix
    (NotInstalled, TransitionInProgress, ...), or a name of the module's own (Timeout,
    Reversed, ...), or None when livepatchctl itself failed before reaching the service."""

    def __init__(self, message, error=None, command=None, rc=None, stderr=None):
        super(LivepatchctlError, self).__init__(message)
        self.message = message
        self.error = error
        self.command = command
        self.rc = rc
        self.stderr = stderr

    def result(self):
        """The fields a failed module returns besides msg."""
        return {'error': self.error, 'command': self.command, 'rc': self.rc,
                'stderr': self.stderr}


def short_error_name(name):
    if name and name.startswith(ERROR_PREFIX):
        return name[len(ERROR_PREFIX):]
    return name


def snake_patch(patch):
    """A patch of `livepatchctl --json list` with the module's (snake_case) keys."""
    return {
        'name': patch.get('Name'),
        'state': patch.get('State'),
        'enabled': patch.get('Enabled'),
        'transition': patch.get('Transition'),
        'replace': patch.get('Replace'),
        'stack_order': patch.get('StackOrder'),
        'installed_at': patch.get('InstalledAt'),
        'applied_at': patch.get('AppliedAt'),
        'skip_reason': patch.get('SkipReason', ''),
        'sha256': patch.get('SHA256', ''),
        'livepatch_objects': [{'object': o.get('Object'), 'symbols': o.get('Symbols')}
                              for o in patch.get('LivepatchObjects', [])],
    }


def snake_task(task):
    """A task of `livepatchctl --json blocking` with snake_case keys."""
    return {
        'tid': task.get('Tid'),
        'tgid': task.get('Tgid'),
        'comm': task.get('Comm'),
        'reason': task.get('Reason'),
        'function': task.get('Function'),
        'kind': task.get('Kind'),
        'state': task.get('State'),
        'unit': task.get('Unit'),
        'blocked_usec': task.get('BlockedUSec'),
        'actions': task.get('Actions', []),
        'stack': task.get('Stack', []),
    }


class Livepatchctl(object):
    """Runs livepatchctl for an AnsibleModule."""

    def __init__(self, module, path=None):
        self.module = module
        if path:
            self.path = path
        else:
            self.path = module.get_bin_path('livepatchctl', required=True,
                                            opt_dirs=['/usr/local/bin', '/usr/bin'])

    def run(self, *args, **kwargs):
        """Output of `livepatchctl --json ARGS` as JSON (None when it printed nothing);
        raises LivepatchctlError on a failure. ok_rcs: exit statuses that are not failures."""
        ok_rcs = kwargs.get('ok_rcs', (0,))
        command = [self.path, '--json'] + list(args)
        rc, out, err = self.module.run_command(command, environ_update={'NO_COLOR': '1'})
        text = ' '.join(command)
        parsed = None
        if out.strip():
            try:
                parsed = json.loads(out)
            except ValueError:
                if rc in ok_rcs:
                    raise LivepatchctlError(
                        '%s printed what is not JSON: %r; livepatchctl and the collection must '
                        'come from versions that agree (livepatchctl --version)' % (text, out[:200]),
                        command=text, rc=rc, stderr=err)
        if rc in ok_rcs:
            return rc, parsed
        message = err.strip()
        if message.startswith('livepatchctl: '):
            message = message[len('livepatchctl: '):]
        name = None
        if isinstance(parsed, dict) and 'Error' in parsed:
            name = short_error_name(parsed.get('Error'))
            message = parsed.get('Message') or message
        raise LivepatchctlError(message or '%s exited %d' % (text, rc), error=name,
                                command=text, rc=rc, stderr=err)

    def status(self):
        return self.run('status')[1]

    def blocking(self):
        """The tasks a transition waits for; [] when livepatchctl cannot say."""
        try:
            tasks = self.run('blocking')[1] or []
        except LivepatchctlError:
            return []
        return [snake_task(t) for t in tasks]

    def check(self):
        """(exit status, {Ok, State, Problems}) of livepatchctl check."""
        return self.run('check', ok_rcs=(0, 3, 4, 5))


def find_patch(status, name):
    for patch in status.get('Patches', []):
        if patch.get('Name') == name:
            return patch
    return None


def wait_transition(ctl, name, timeout, poll_interval, sleep=time.sleep, clock=time.monotonic):
    """Waits until patch `name` is out of its transition (its State neither applying nor
    reverting, and livepatchd's TransitionPatch no longer it: the service's State may read
    transitioning a moment after the kernel finished, and a health gate's `livepatchctl check`
    right after would fail) and returns the last status. Keeps the last non-empty list of blocking tasks
    seen, so that a transition livepatchd ended by reversing it can still say what blocked it.
    Raises LivepatchctlError(error='Timeout') with the blocking tasks after timeout seconds."""
    deadline = clock() + timeout
    blocking = []
    while True:
        status = ctl.status()
        patch = find_patch(status, name)
        if ((patch is None or patch.get('State') not in MOVING_STATES)
                and status.get('TransitionPatch') != name):
            return status, blocking
        seen = ctl.blocking()
        if seen:
            blocking = seen
        if clock() >= deadline:
            error = LivepatchctlError(
                'the transition of %s to %s did not end within %s s (State %s, %d task(s) '
                'left, livepatchd State %s); livepatchd keeps at it and its '
                'transition.on_stall decides what happens at its stall timeout: see '
                "'livepatchctl blocking -v' and 'journalctl -u livepatchd' on the host"
                % (name, status.get('TransitionTarget') or '?', timeout,
                   patch.get('State') if patch else 'absent',
                   status.get('PendingTasks', 0), status.get('State')),
                error='Timeout')
            error.blocking = blocking
            raise error
        sleep(poll_interval)


def wait_idle(ctl, timeout, poll_interval, sleep=time.sleep, clock=time.monotonic):
    """Waits until no transition runs (another patch's, started by someone else), so that this
    one is not refused with TransitionInProgress; returns the status then."""
    deadline = clock() + timeout
    while True:
        status = ctl.status()
        if not status.get('TransitionPatch'):
            return status
        if clock() >= deadline:
            error = LivepatchctlError(
                'a transition of %s to %s has been under way for more than %s s: one '
                'transition at a time; see livepatchctl blocking -v on the host'
                % (status.get('TransitionPatch'), status.get('TransitionTarget'), timeout),
                error='TransitionInProgress')
            error.blocking = ctl.blocking()
            raise error
        sleep(poll_interval)
