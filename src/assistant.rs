//! The assistant: answers the replies that wait for it. `flow::text_received` stores a reply as
//! `waiting` when its conversation's profile has a local model (`[profile.llm]`), or when an
//! earlier reply of the same conversation is still waiting.
//!
//! One task per conversation with waiting replies: a slow model for one caller holds up nobody
//! else, and each conversation's replies are answered one at a time, in the order they came. The
//! model is asked outside any store transaction and never for longer than
//! `profile.llm.timeout_ms`; a reply that already waited that long behind another is answered by
//! the built-in engine at once. What the model says is checked in `flow::step_waiting` before any
//! of it is used. A reply still waiting when the daemon stops is answered at the next start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{ConversationId, ProfileId};
use crate::flow::{self, ModelRead, WaitingReply};
use crate::llm::client::{LlmClient, Speaker, Turn};
use crate::store::{self, Store};
use crate::wake::Wakers;

/// Answers waiting replies; cheap to clone.
#[derive(Clone)]
pub struct Assistant {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Arc<Config>,
    /// One client per profile with a model.
    clients: HashMap<ProfileId, LlmClient>,
    /// Conversations with a task at work, and whether another reply came meanwhile.
    busy: Mutex<HashMap<ConversationId, bool>>,
    tasks: TaskTracker,
    token: CancellationToken,
    wakers: Wakers,
    clock: Clock,
}

impl Assistant {
    /// `tasks` runs the per-conversation tasks; `token` stops them (a reply being read stays
    /// waiting).
    pub fn new(
        store: Store,
        config: Arc<Config>,
        tasks: TaskTracker,
        token: CancellationToken,
        wakers: Wakers,
        clock: Clock,
    ) -> anyhow::Result<Assistant> {
        let mut clients = HashMap::new();
        for profile in &config.profiles {
            if let Some(settings) = &profile.llm {
                let client = LlmClient::new(settings.clone())
                    .map_err(|err| anyhow::anyhow!("profile {}: local model: {err}", profile.id))?;
                clients.insert(profile.id.clone(), client);
            }
        }
        Ok(Assistant {
            inner: Arc::new(Inner {
                store,
                config,
                clients,
                busy: Mutex::new(HashMap::new()),
                tasks,
                token,
                wakers,
                clock,
            }),
        })
    }

    /// Makes sure the conversation's waiting replies are being answered.
    pub fn think(&self, conversation: ConversationId) {
        {
            let mut busy = self.inner.busy();
            if let Some(again) = busy.get_mut(&conversation) {
                *again = true;
                return;
            }
            busy.insert(conversation, false);
        }
        let inner = self.inner.clone();
        let span = info_span!("assistant", conversation_id = %conversation);
        self.inner
            .tasks
            .spawn(inner.work(conversation).instrument(span));
    }

    /// Looks for replies left waiting (by a restart, or a store error) and answers them.
    pub async fn resume(&self) -> Result<usize, store::Error> {
        let waiting = self
            .inner
            .store
            .run(|tx| tx.waiting_conversations())
            .await?;
        for conversation in &waiting {
            self.think(*conversation);
        }
        Ok(waiting.len())
    }
}

impl Inner {
    fn busy(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, bool>> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn work(self: Arc<Self>, conversation: ConversationId) {
        loop {
            let stepped = if self.token.is_cancelled() {
                Ok(false)
            } else {
                self.step(conversation).await
            };
            match stepped {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => {
                    // Left waiting: housekeeping looks again.
                    warn!(error = %err, "could not answer a waiting reply");
                }
            }
            let mut busy = self.busy();
            match busy.get_mut(&conversation) {
                Some(again) if *again && !self.token.is_cancelled() => *again = false,
                _ => {
                    busy.remove(&conversation);
                    return;
                }
            }
        }
    }

    /// Answers the oldest waiting reply; false when none is left (or on shutdown).
    async fn step(&self, conversation: ConversationId) -> Result<bool, store::Error> {
        let Some(waiting) = flow::next_waiting(&self.store, conversation).await? else {
            return Ok(false);
        };
        let read = match self.ask_model(&waiting).await {
            Some(read) => read,
            None => return Ok(false), // shutting down: the reply stays waiting
        };
        let after = flow::step_waiting(
            &self.store,
            self.config.clone(),
            waiting,
            read,
            self.clock.now(),
        )
        .await?;
        self.wakers.after(&after);
        Ok(true)
    }

    /// What the profile's model makes of the reply; `None` when the daemon is stopping.
    async fn ask_model(&self, waiting: &WaitingReply) -> Option<ModelRead> {
        let Some(client) = self
            .clients
            .get(&waiting.profile)
            .filter(|_| waiting.for_model)
        else {
            return Some(ModelRead::NotAsked);
        };
        let Some(profile) = self.config.profile(&waiting.profile) else {
            return Some(ModelRead::NotAsked);
        };
        // The engine reads every answer asked for (and the model may not word the text): nothing
        // the model says would change the answer, so the caller does not wait for it.
        let options = profile
            .llm
            .as_ref()
            .map(|llm| llm.combine.clone())
            .unwrap_or_default();
        let can_help = waiting.state.as_ref().is_some_and(|state| {
            crate::core::proposal::model_can_help(
                &profile.dialogue,
                state,
                &waiting.text,
                waiting.at,
                &options,
            )
        });
        if !can_help {
            return Some(ModelRead::NotAsked);
        }
        let bound = client.settings().timeout;
        let waited = (self.clock.now() - waiting.at).to_std().unwrap_or_default();
        if waited >= bound {
            return Some(ModelRead::Failed(format!(
                "the reply already waited {} ms, more than profile.llm.timeout_ms",
                waited.as_millis()
            )));
        }
        let turns: Vec<Turn> = waiting
            .so_far
            .iter()
            .map(|(from_caller, text)| Turn {
                from: if *from_caller {
                    Speaker::Caller
                } else {
                    Speaker::Business
                },
                text: text.clone(),
            })
            .collect();
        // The bound counts from the reply's arrival, not from this call.
        let left = bound - waited;
        let questions = waiting
            .state
            .as_ref()
            .map(|state| crate::core::proposal::questions_for_model(&profile.dialogue, state))
            .unwrap_or_default();
        let extract = tokio::time::timeout(left, client.extract(&questions, &turns, &waiting.text));
        tokio::select! {
            _ = self.token.cancelled() => None,
            result = extract => Some(match result {
                Ok(Ok(extraction)) => ModelRead::Proposed {
                    proposal: extraction.proposal,
                    elapsed_ms: extraction.elapsed.as_millis() as u64,
                },
                Ok(Err(err)) => ModelRead::Failed(err.to_string()),
                Err(_) => ModelRead::Failed(format!(
                    "no answer within profile.llm.timeout_ms ({} ms) of the reply's arrival",
                    bound.as_millis()
                )),
            }),
        }
    }
}
