// SPDX-License-Identifier: GPL-2.0-only
#include "bpf/pending_task_lister.hpp"

#include "common/clock.hpp"
#include "common/dispatch_label.hpp"
#include "common/journal.hpp"

#include <algorithm>
#include <set>
#include <utility>

namespace livepatchd {

namespace {

// The selection that serves every request: every stack if one wants them all, the union of
// the tids asked for otherwise.
template <typename Requests>
StackSelection merged(const Requests& asked)
{
    std::set<pid_t> tids;
    for (const auto& request : asked) {
        if (request.stacks.kind == StackSelection::Kind::all)
            return StackSelection::every();
        tids.insert(request.stacks.tids.begin(), request.stacks.tids.end());
    }
    return StackSelection::of(std::move(tids));
}

} // namespace

PendingTaskLister::PendingTaskLister(sd_event* event, const PendingTaskTracker& tracker) noexcept
    : event_(event), tracker_(tracker)
{
    if (!event_)
        return;
    // Without the thread (or out of memory for it), the loop reads the walks, a slice a turn.
    try {
        auto reader = OffLoopQueue::create(event_, "the end of a pending-task walk's read",
                                            OffLoopQueue::Priority::below_loop);
        if (reader)
            reader_ = std::move(*reader);
        else
            journal::log(LogLevel::warning, reader.error().message +
                                                "; the pending-task walks are read on the "
                                                "event loop, a slice a turn");
    } catch (...) {
    }
}

PendingTaskLister::~PendingTaskLister()
{
    closing_ = true;
    reader_.reset(); // the read under way stops after its slice; its continuation never runs
    sd_event_source_disable_unref(source_);
}

void PendingTaskLister::list(StackSelection stacks, Done done)
{
    queued_.push_back({std::move(stacks), std::move(done)});
    if (source_)
        return; // the walk under way starts the next one when it ends
    if (event_ && sd_event_add_defer(event_, &source_, on_turn, this) >= 0) {
        if (sd_event_source_set_priority(source_, SD_EVENT_PRIORITY_IDLE) >= 0 &&
            sd_event_source_set_enabled(source_, SD_EVENT_ON) >= 0)
            return;
        source_ = sd_event_source_disable_unref(source_);
    }
    // No loop to run on (or no room for the source): the whole walk now.
    while (busy())
        turn();
}

int PendingTaskLister::on_turn(sd_event_source*, void* userdata) noexcept
{
    auto* self = static_cast<PendingTaskLister*>(userdata);
    try {
        self->turn();
    } catch (...) {
        self->abandon();
    }
    return 0;
}

void PendingTaskLister::abandon() noexcept
{
    // (Out of memory.) The walk ends; what it served is told so, if that can be said.
    walk_.reset();
    read_.reset();
    std::vector<Request> served = std::move(serving_);
    serving_.clear();
    for (Request& request : served) {
        try {
            request.done(Error{ENOMEM, "list the pending tasks: out of memory"});
        } catch (...) {
        }
    }
}

// A request for the stacks of some tids gets those tasks only.
bool PendingTaskLister::selective(const Request& request)
{
    return request.stacks.kind == StackSelection::Kind::some;
}

void PendingTaskLister::start()
{
    serving_ = std::move(queued_);
    queued_.clear();
    // When every request is selective, the walk keeps only what they select. Selective ones
    // are answered first, from the whole list, which the last of the others then takes.
    std::stable_partition(serving_.begin(), serving_.end(), selective);
    only_selected_ = std::all_of(serving_.begin(), serving_.end(), selective);
    auto walk = tracker_.walk(merged(serving_), only_selected_ ? 0 : expected_, only_selected_);
    if (!walk) {
        read_ = std::move(walk).error();
        return;
    }
    walk_.emplace(std::move(*walk));
}

void PendingTaskLister::turn()
{
    if (reading_)
        return; // (the source could not be turned off) the reader turns it on again
    label_dispatch(read_ ? "a pending-task walk's listener" : "a pending-task walk's read");
    if (read_) {
        // The walk has ended: its listeners are called a turn each (at 30,000 tasks each one's
        // work on the list takes tens of ms under emulation).
        answer_next();
        return;
    }
    if (!walk_) {
        if (queued_.empty()) {
            source_ = sd_event_source_disable_unref(source_);
            return;
        }
        start();
        if (!walk_)
            return;
    }
    // (Without source_, the walk is read in place: the thread's continuation could not run.)
    if (reader_ && source_) {
        read_off_loop();
        return;
    }
    read(walk_->read_until(monotonic_usec() + slice_usec));
}

void PendingTaskLister::read_off_loop()
{
    struct Outcome {
        Result<bool> ended = false;
        bool out_of_memory = false;
    };
    auto outcome = std::make_shared<Outcome>();
    reader_->post(
        [this, outcome] {
            // The work must not throw: out of memory ends the walk like a failed read (told
            // on the loop: making its message allocates too).
            try {
                // A slice at a time, so that the destructor's wait is one slice at most.
                do {
                    outcome->ended = walk_->read_until(monotonic_usec() + slice_usec);
                } while (outcome->ended && !*outcome->ended && !closing_);
            } catch (...) {
                outcome->out_of_memory = true;
            }
        },
        [this, outcome] {
            reading_ = false;
            // Nothing would turn again without it: then the rest here, as list() does without
            // a loop (until a listener's list() makes a new source, which takes over).
            bool turns = sd_event_source_set_enabled(source_, SD_EVENT_ON) >= 0;
            if (!turns)
                source_ = sd_event_source_disable_unref(source_);
            try {
                if (outcome->out_of_memory)
                    read(Error{ENOMEM, "list the pending tasks: out of memory"});
                else
                    read(std::move(outcome->ended));
                if (turns)
                    return;
                journal::log(LogLevel::warning, "the pending-task walk's turns cannot be "
                                                "turned on again; its rest is read at once");
                while (!source_ && busy())
                    turn();
            } catch (...) {
                abandon();
            }
        });
    // The turns wait while the thread reads (the continuation runs on the loop, after this).
    // Not turned off: they return at once until then.
    (void)sd_event_source_set_enabled(source_, SD_EVENT_OFF);
    reading_ = true;
}

void PendingTaskLister::read(Result<bool> ended)
{
    if (!ended) {
        walk_.reset();
        read_ = std::move(ended).error();
    } else if (*ended) {
        read_ = walk_->take();
        walk_.reset(); // its stack selection goes before the next walk makes its own
        // And a few more, within the map's size. (Room not written to costs no memory.)
        if (!only_selected_)
            expected_ = std::min<std::size_t>((*read_)->size() + (*read_)->size() / 16,
                                              tracker_.capacity());
    }
}

void PendingTaskLister::answer_next()
{
    // The listener may ask again (queued_, for the next walk): it is taken out first. A
    // selective one gets a copy of its tasks (they come first); the others a copy of the list
    // but the last, which takes it (30,000 tasks copy slowly, and free as slowly).
    if (serving_.empty()) {
        read_.reset();
        return;
    }
    // (The copy first: if it fails, the request is still there for on_turn to answer.)
    std::optional<Result<std::vector<TrackedTask>>> listed;
    if (selective(serving_.front()) && *read_) {
        const std::set<pid_t>& tids = serving_.front().stacks.tids;
        std::vector<TrackedTask> tasks;
        for (const TrackedTask& task : **read_)
            if (tids.contains(task.tid))
                tasks.push_back(task);
        listed.emplace(std::move(tasks));
    } else if (serving_.size() == 1) {
        listed.emplace(std::move(*read_));
    } else {
        listed.emplace(*read_);
    }
    Request request = std::move(serving_.front());
    serving_.erase(serving_.begin());
    if (serving_.empty())
        read_.reset();
    // One that fails (out of memory) must not cost the others their answer.
    try {
        request.done(std::move(*listed));
    } catch (...) {
    }
}

} // namespace livepatchd
