//! The event loop (X5): pop the earliest event, hand it to the machine it concerns,
//! then honour the driving contract (`tiercast_proto::machine`) — drain
//! `poll_output` (every transmit goes through the network model as
//! `Transmit::into_wire`, every event to metrics and the event log), and
//! reschedule the machine's one timer from `poll_timeout` (a generation number
//! makes older timer entries stale). No decision is made here: the node and
//! coordinator machines decide, the simulator only carries.

use crate::queue::{Ev, InFlight};
use crate::world::{Role, Simulation, NO_TIMER};
use std::time::Instant;
use tiercast_coordinator::CoordEvent;
use tiercast_node::Event;
use tiercast_proto::{Machine, Message, NodeId, Output, Timestamp};

/// Bytes a message occupies on the wire: the frame (length, version, kind) and body.
pub fn wire_bytes(msg: &Message) -> u64 {
    tiercast_proto::codec::frame_len(msg) as u64
}

/// Wire bytes of a block frame.
pub fn wire_bytes_block(b: &tiercast_proto::Block) -> u64 {
    tiercast_proto::codec::block_frame_len(b) as u64
}

impl Simulation {
    /// Runs the scenario to its end and writes the outputs.
    pub fn run(&mut self) -> Result<crate::Report, crate::SimError> {
        let wall = Instant::now();
        self.schedule_start();
        let mut progress = crate::progress::Progress::new(self.opts.progress, self.end);
        while let Some(at) = self.queue.peek_time() {
            if at > self.end {
                break;
            }
            let (at, ev) = self.queue.pop().expect("peeked");
            self.now = at;
            self.dispatch(ev);
            if ev == Ev::Sample {
                progress.update(self.now, self.events, self.watching_viewers());
            }
        }
        self.now = self.end;
        progress.finish(self.events);
        let wall_s = wall.elapsed().as_secs_f64();
        crate::report::finish(self, wall_s)
    }

    fn schedule_start(&mut self) {
        self.queue.push(1_000_000.min(self.end), Ev::Sample);
        for (i, ev) in self.population.initial_events(&mut self.rng_arrivals) {
            self.queue.push(i, ev);
        }
        for (i, p) in self.sc.policies.iter().enumerate() {
            self.queue
                .push((p.at_s * 1e6).round() as u64, Ev::Policy(i as u16));
        }
        for (i, f) in self.sc.faults.clone().iter().enumerate() {
            self.queue
                .push((f.at_s() * 1e6).round() as u64, Ev::FaultStart(i as u16));
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver(slot) => {
                self.events += 1;
                let m = self.queue.take_message(slot);
                self.deliver(m);
            }
            Ev::Timer { node, gen } => {
                let s = &mut self.slots[node as usize];
                if s.timer_gen != gen {
                    return;
                }
                self.events += 1;
                s.timer_at = NO_TIMER;
                let now = Timestamp(self.now);
                if node == 0 {
                    if self.coordinator_down() {
                        return;
                    }
                    self.coord.handle_timeout(now);
                    self.drain_coord();
                } else if let Some(n) = s.node.as_mut() {
                    n.handle_timeout(now);
                    self.drain_node(node);
                }
            }
            Ev::Ingest => {
                self.events += 1;
                self.ingest_next();
            }
            Ev::IngestSecond => {
                self.events += 1;
                self.ingest_second();
            }
            Ev::Sample => {
                self.events += 1;
                self.sample();
                let next = self.now + 1_000_000;
                if next <= self.end {
                    self.queue.push(next, Ev::Sample);
                }
            }
            Ev::Arrival(p) => {
                self.events += 1;
                self.arrival(p);
            }
            Ev::Leave(id) => {
                self.events += 1;
                self.viewer_leave(id);
            }
            Ev::LeaveWave(p) => {
                self.events += 1;
                self.leave_wave(p);
            }
            Ev::FaultStart(i) => {
                self.events += 1;
                self.fault_start(i as usize);
            }
            Ev::FlakyDown(id) => {
                self.events += 1;
                self.flaky_down(id);
            }
            Ev::FlakyUp(id) => {
                self.events += 1;
                self.flaky_up(id);
            }
            Ev::FaultEnd(i) => {
                self.events += 1;
                self.fault_end(i as usize);
            }
            Ev::LinkDown { node, peer } => {
                self.events += 1;
                self.link_down(node, peer);
            }
            Ev::LinkReset { node, peer } => {
                self.events += 1;
                self.lose_link(node, peer);
            }
            Ev::CoordinatorReset(node) => {
                self.events += 1;
                self.coordinator_reset(node);
            }
            Ev::Policy(i) => {
                self.events += 1;
                self.apply_policy_step(i);
            }
        }
    }

    fn deliver(&mut self, m: InFlight) {
        let InFlight { from, to, msg } = m;
        let now = Timestamp(self.now);
        if to == 0 {
            if self.coordinator_down() {
                self.metrics.to_departed += 1;
                return;
            }
            self.coord.handle_message(now, NodeId(from), msg);
            self.drain_coord();
            return;
        }
        let second = self.second_block_msg(&msg);
        let Some(node) = self.slots[to as usize].node.as_mut() else {
            self.metrics.to_departed += 1;
            return;
        };
        if msg.is_block() && !second {
            self.metrics.block_msgs_received += 1;
            if to >= self.first_viewer {
                let v = &mut self.viewers[(to - self.first_viewer) as usize];
                v.block_msgs = v.block_msgs.saturating_add(1);
            }
        }
        node.handle_message(now, NodeId(from), msg);
        self.drain_node(to);
    }

    /// Sends one message through the network model.
    pub(crate) fn send(&mut self, from: u32, to: u32, msg: Message) {
        if to as usize >= self.slots.len() {
            self.metrics.to_unknown += 1;
            return;
        }
        let msg = self.signing.outgoing(from, msg);
        let bytes = wire_bytes(&msg);
        let sent = if msg.is_media() {
            self.net.send(self.now, from, to, bytes)
        } else {
            self.net.send_control(self.now, from, to, bytes)
        };
        match sent {
            Ok(d) => {
                let up = self.net.uplink_kbps(from);
                self.checker.on_departure(from, &d, bytes, up);
                if msg.is_media() {
                    self.metrics.media_bytes += bytes;
                    if from == self.origin {
                        self.metrics.origin_upload_bytes += bytes;
                        self.origin_sent.sent(d.depart_start, d.depart_end, bytes);
                    }
                    if self.net.region_of(from) != self.net.region_of(to) {
                        self.metrics.media_cross_region_bytes += bytes;
                        self.meter_pair(from, to, d.depart_start, d.depart_end, bytes);
                    }
                } else {
                    self.metrics.control_bytes += bytes;
                    self.metrics.control_messages += 1;
                }
                self.queue.push_message(d.arrival, from, to, msg);
            }
            Err(_) => {
                self.metrics.dropped_messages += 1;
            }
        }
    }

    /// Drains a node machine after an input: transmits, events, timer.
    pub(crate) fn drain_node(&mut self, id: u32) {
        let Some(mut node) = self.slots[id as usize].node.take() else {
            return;
        };
        self.drain_boxed(id, &mut node);
        let want = node.poll_timeout();
        self.slots[id as usize].node = Some(node);
        self.reschedule(id, want);
    }

    /// Drains a machine that is out of its slot (also used for a departing viewer).
    pub(crate) fn drain_boxed(&mut self, id: u32, node: &mut tiercast_node::Node) {
        while let Some(out) = Machine::poll_output(node) {
            match out {
                Output::Transmit(t) => self.send(id, t.to.0, t.into_wire()),
                Output::Event(e) => self.on_node_event(id, e),
            }
        }
    }

    pub(crate) fn drain_coord(&mut self) {
        while let Some(out) = Machine::poll_output(&mut self.coord) {
            match out {
                Output::Transmit(t) => {
                    if matches!(t.msg, tiercast_proto::Message::ParentSet { .. }) {
                        self.restarts.parent_set_sent(self.now);
                    }
                    self.send(0, t.to.0, t.into_wire());
                }
                Output::Event(e) => self.on_coord_event(e),
            }
        }
        self.restart_check_coordinator();
        let want = self.coord.poll_timeout();
        self.reschedule(0, want);
    }

    /// Keeps exactly one live timer entry per machine.
    pub(crate) fn reschedule(&mut self, id: u32, want: Option<Timestamp>) {
        let s = &mut self.slots[id as usize];
        match want {
            None => {
                if s.timer_at != NO_TIMER {
                    s.timer_gen = s.timer_gen.wrapping_add(1);
                    s.timer_at = NO_TIMER;
                }
            }
            Some(t) if t.0 != s.timer_at => {
                s.timer_gen = s.timer_gen.wrapping_add(1);
                s.timer_at = t.0;
                let gen = s.timer_gen;
                self.queue
                    .push(t.0.max(self.now), Ev::Timer { node: id, gen });
            }
            Some(_) => {}
        }
    }

    /// Forgets a machine's pending timer (it crashed or left).
    pub(crate) fn cancel_timer(&mut self, id: u32) {
        let s = &mut self.slots[id as usize];
        s.timer_gen = s.timer_gen.wrapping_add(1);
        s.timer_at = NO_TIMER;
    }

    fn on_coord_event(&mut self, e: CoordEvent) {
        self.log.record(self.now, &e);
        match &e {
            CoordEvent::NodeTimedOut { node } => self.faults.on_timed_out(node.0, self.now),
            CoordEvent::Reassigned { node, removed, .. } => {
                self.faults.on_reassigned(node.0, removed, self.now)
            }
            // The second channel's overlay is not in the first's books.
            CoordEvent::PeersRecomputed { channel, .. }
            | CoordEvent::PeerEjected { channel, .. }
            | CoordEvent::PeerJoined { channel, .. }
            | CoordEvent::PeerTurnedAway { channel, .. }
                if self.is_second(*channel) => {}
            CoordEvent::PeersRecomputed { .. } => self.recomputed(),
            CoordEvent::PeerEjected { peer, .. } => {
                self.ejections.entry(peer.0).or_default().push(self.now);
                if let Some(vi) = self.viewer_index(peer.0) {
                    self.member_ejected(vi);
                }
            }
            CoordEvent::PeerJoined { peer, .. } => {
                if let Some(vi) = self.viewer_index(peer.0) {
                    self.member_admitted(vi);
                }
            }
            CoordEvent::PeerTurnedAway { .. } => self.turned_away += 1,
            _ => {}
        }
        if self.opts.keep_events {
            self.log.keep(self.now, e);
        }
    }

    fn on_node_event(&mut self, id: u32, e: Event) {
        match e {
            Event::BlockStored { block } if self.is_second(block.channel) => {
                self.second_block(id, &block)
            }
            Event::BlockStored { block } => match self.role(id) {
                Role::Viewer => {
                    self.metrics.unique_blocks_stored += 1;
                    let v = &mut self.viewers[(id - self.first_viewer) as usize];
                    v.blocks_stored = v.blocks_stored.saturating_add(1);
                    if self.planted_gap_skips(id) {
                        return;
                    }
                    self.restart_block(block.seq);
                    self.viewer_block(id, &block);
                    if self.plants.contains(&crate::world::Plant::DoubleCount) {
                        self.plants
                            .retain(|p| *p != crate::world::Plant::DoubleCount);
                        self.viewer_block(id, &block);
                    }
                }
                Role::Relay => self.metrics.unique_blocks_stored += 1,
                _ => {}
            },
            Event::ChannelReady { desc, .. } if self.is_second_named(&desc.name) => {
                self.second_ready(&desc)
            }
            Event::ChannelReady { desc, .. } => self.channel_ready(desc),
            Event::ParentConnected { parent, .. } => {
                self.faults.on_parent_connected(id, parent.0, self.now)
            }
            Event::Watching { channel, .. }
                if self.role(id) == Role::Viewer && self.is_second(channel.id) =>
            {
                self.second_session(id);
            }
            Event::Watching { .. } if self.role(id) == Role::Viewer => {
                let vi = (id - self.first_viewer) as usize;
                self.viewers[vi].new_session();
                self.arm_planted_gap(id);
            }
            Event::WatchDenied { channel_name, .. } if self.is_second_named(&channel_name) => {
                self.second_denied()
            }
            Event::WatchDenied { reason, .. } => {
                self.metrics.watch_denied += 1;
                if reason == tiercast_proto::DenyReason::Ejected && id >= self.first_viewer {
                    self.viewers[(id - self.first_viewer) as usize].ejected = true;
                }
            }
            Event::LoginDenied { .. } => self.metrics.login_denied += 1,
            Event::Invalid { .. } => self.metrics.node_invalid += 1,
            Event::BlockRejected { .. } => self.metrics.rejected_blocks += 1,
            _ => {}
        }
    }

    pub(crate) fn watching_viewers(&self) -> u64 {
        self.metrics.watching
    }
}
