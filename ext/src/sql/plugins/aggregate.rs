//! Aggregate and window plugins (and `js_agg(name, ...)`) as SQLite aggregate and window
//! functions: each group, each window partition, starts from a fresh world with the plugin
//! loaded, and its state never leaves that world.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use jsbox_abi::PluginOp;
use rusqlite::functions::{Aggregate, Context, WindowAggregate};
use rusqlite::types::Value as SqlValue;

use super::registry::{Registered, Use};
use super::{arguments, plugin_name_argument, Plugins};
use crate::error::{CallError, PluginError};
use crate::plugin::{CompiledPlugin, World};

/// One plugin's aggregate function, or `js_agg` when `name` is `None`.
pub struct PluginAggregate {
    pub plugins: Plugins,
    pub name: Option<String>,
    pub usage: Use,
    /// What its SQL function was registered as (`None` for js_agg).
    pub registered: Option<Registered>,
}

/// One group's sandbox.
pub struct Group {
    name: String,
    compiled: Arc<CompiledPlugin>,
    world: AssertUnwindSafe<World>,
}

impl PluginAggregate {
    /// Arguments before the plugin's own (js_agg's name).
    fn skip(&self) -> usize {
        usize::from(self.name.is_none())
    }

    /// A fresh world with plugin `name` loaded and `init()` run: one an earlier group parked
    /// (reset to the plugin's image), or a new one.
    fn start(&self, name: &str, argc: Option<usize>) -> Result<(World, Arc<CompiledPlugin>), CallError> {
        let compiled = self.plugins.compiled(name, self.usage, argc, self.registered)?;
        let session = &self.plugins.session;
        let mut limits = session.limits();
        limits.deterministic |= session.registry().runs_deterministically(name);
        let mut parked = crate::parking::unpark(session.owner, &compiled, limits.deterministic);
        let world = session.with_room(|| {
            let mut world = match parked.take() {
                Some(mut world) => {
                    world.reseed(&compiled)?;
                    world
                }
                None => World::new(&compiled, &limits)?,
            };
            world.init()?;
            Ok(world)
        })?;
        Ok((world, compiled))
    }

    /// The result of a group's last call, after which its world is parked for the next group.
    fn finish(&self, group: Group, op: PluginOp) -> rusqlite::Result<SqlValue> {
        let Group { name, compiled, world: AssertUnwindSafe(mut world) } = group;
        let result = world.result(op);
        self.plugins.session.registry().record_console(&name, world.console());
        let result = result.map_err(|e| e.in_function(&name))?;
        crate::parking::park(self.plugins.session.owner, &compiled, world);
        Ok(result)
    }

    /// The plugin an empty group or frame is answered by; `None` for js_agg, which cannot know.
    fn empty(&self, op: PluginOp) -> rusqlite::Result<SqlValue> {
        let Some(name) = &self.name else { return Ok(SqlValue::Null) };
        self.start(name, None).and_then(|(mut world, _)| world.result(op)).map_err(|e| e.in_function(name))
    }
}

impl Aggregate<Group, SqlValue> for PluginAggregate {
    fn init(&self, ctx: &mut Context<'_>) -> rusqlite::Result<Group> {
        let name = match &self.name {
            Some(name) => name.clone(),
            None => plugin_name_argument(ctx).map_err(|e| e.in_function("js_agg"))?,
        };
        let argc = ctx.len() - self.skip();
        let (world, compiled) = self.start(&name, Some(argc)).map_err(|e| e.in_function(&name))?;
        Ok(Group { name, compiled, world: AssertUnwindSafe(world) })
    }

    fn step(&self, ctx: &mut Context<'_>, group: &mut Group) -> rusqlite::Result<()> {
        if self.name.is_none() {
            let now = plugin_name_argument(ctx).map_err(|e| e.in_function("js_agg"))?;
            if now != group.name {
                let error = PluginError::NameChangedInGroup { first: group.name.clone(), now };
                return Err(CallError::from(error).in_function("js_agg"));
            }
        }
        group.world.step(arguments(ctx, self.skip())).map_err(|e| e.in_function(&group.name))
    }

    fn finalize(&self, _: &mut Context<'_>, group: Option<Group>) -> rusqlite::Result<SqlValue> {
        match group {
            Some(group) => self.finish(group, PluginOp::Final),
            // An empty group: final(init()) in a fresh world.
            None => self.empty(PluginOp::Final),
        }
    }
}

impl WindowAggregate<Group, SqlValue> for PluginAggregate {
    fn value(&self, group: Option<&mut Group>) -> rusqlite::Result<SqlValue> {
        match group {
            Some(group) => group.world.result(PluginOp::Value).map_err(|e| e.in_function(&group.name)),
            // An empty frame: value(init()) (final's, without value) in a fresh world.
            None => self.empty(PluginOp::Value),
        }
    }

    fn inverse(&self, ctx: &mut Context<'_>, group: &mut Group) -> rusqlite::Result<()> {
        group.world.inverse(arguments(ctx, self.skip())).map_err(|e| e.in_function(&group.name))
    }
}
