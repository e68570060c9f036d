// The chat page: plain DOM, no framework. Talks to the feathers-style API
// of the same origin and follows /events for new users and messages.
'use strict';

const TOKEN_KEY = 'chat-token';
const PAGE = 25;

const $ = (id) => document.getElementById(id);
const state = { token: null, user: null, events: null, shown: new Set(), users: new Set() };

function showError(err) {
  $('error').textContent = err ? String(err.message || err) : '';
}

async function api(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (state.token) headers['Authorization'] = 'Bearer ' + state.token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = new Error((data && data.message) || res.status + ' ' + res.statusText);
    err.code = res.status;
    throw err;
  }
  return data;
}

function formatDate(ms) {
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(ms));
}

function avatar(user) {
  const img = document.createElement('img');
  img.className = 'avatar';
  img.alt = '';
  img.referrerPolicy = 'no-referrer';
  if (user && user.avatar) img.src = user.avatar;
  return img;
}

function addUser(user) {
  if (state.users.has(user.id)) return;
  state.users.add(user.id);
  const li = document.createElement('li');
  li.className = 'user';
  li.dataset.id = user.id;
  const name = document.createElement('span');
  name.textContent = user.email;
  li.append(avatar(user), name);
  $('users').append(li);
  $('user-count').textContent = state.users.size;
}

function addMessage(msg) {
  if (state.shown.has(msg.id)) return;
  state.shown.add(msg.id);
  const list = $('messages');
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  const li = document.createElement('li');
  li.className = 'message';
  li.dataset.id = msg.id;
  const head = document.createElement('header');
  const who = document.createElement('strong');
  who.className = 'author';
  who.textContent = (msg.user && msg.user.email) || 'user ' + msg.userId;
  const when = document.createElement('time');
  when.dateTime = new Date(msg.createdAt).toISOString();
  when.textContent = formatDate(msg.createdAt);
  head.append(avatar(msg.user), who, when);
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = msg.text;
  li.append(head, text);
  // Keep the list in id order even when a pushed message overtakes a page.
  let before = null;
  for (const el of list.children) {
    if (Number(el.dataset.id) > msg.id) { before = el; break; }
  }
  list.insertBefore(li, before);
  if (atBottom || msg.userId === (state.user && state.user.id)) list.scrollTop = list.scrollHeight;
}

async function loadMessages() {
  // The newest 25, newest first; shown oldest first.
  const page = await api('GET', '/messages?' + encodeURIComponent('$sort[createdAt]') + '=-1&$limit=' + PAGE);
  page.data.slice().reverse().forEach(addMessage);
}

async function loadUsers() {
  const page = await api('GET', '/users?$limit=50');
  page.data.forEach(addUser);
}

function follow() {
  if (state.events) state.events.close();
  const es = new EventSource('/events?token=' + encodeURIComponent(state.token));
  state.events = es;
  es.addEventListener('connected', () => {
    $('live').textContent = 'live';
    $('live').classList.add('on');
    // Catch up on anything missed while the stream was down.
    loadMessages().catch(showError);
  });
  es.addEventListener('messages created', (e) => addMessage(JSON.parse(e.data)));
  es.addEventListener('users created', (e) => addUser(JSON.parse(e.data)));
  es.addEventListener('expired', () => signOut(false));
  es.onerror = () => {
    $('live').textContent = 'offline';
    $('live').classList.remove('on');
    // A refused token closes the EventSource for good; sign in again.
    if (es.readyState === EventSource.CLOSED && state.events === es) signOut(false);
  };
}

async function enterChat(result) {
  state.token = result.accessToken;
  state.user = result.user;
  localStorage.setItem(TOKEN_KEY, state.token);
  state.shown.clear();
  state.users.clear();
  $('messages').replaceChildren();
  $('users').replaceChildren();
  $('me').textContent = state.user.email;
  $('login').hidden = true;
  $('chat').hidden = false;
  showError(null);
  await Promise.all([loadMessages(), loadUsers()]);
  follow();
  $('text').focus();
}

async function signOut(tellServer) {
  if (state.events) { state.events.close(); state.events = null; }
  if (tellServer && state.token) {
    try { await api('DELETE', '/authentication'); } catch (e) { /* the token is dropped anyway */ }
  }
  state.token = null;
  state.user = null;
  localStorage.removeItem(TOKEN_KEY);
  $('chat').hidden = true;
  $('login').hidden = false;
}

function credentials() {
  return { email: $('email').value.trim(), password: $('password').value };
}

async function signIn() {
  const { email, password } = credentials();
  await enterChat(await api('POST', '/authentication', { strategy: 'local', email, password }));
}

async function signUp() {
  const { email, password } = credentials();
  await api('POST', '/users', { email, password });
  await signIn();
}

async function post() {
  const input = $('text');
  const text = input.value;
  if (!text.trim()) return;
  const msg = await api('POST', '/messages', { text });
  input.value = '';
  addMessage(msg);
}

function on(id, event, fn) {
  $(id).addEventListener(event, (e) => {
    e.preventDefault();
    showError(null);
    Promise.resolve(fn()).catch((err) => {
      if (err.code === 401 && state.token) signOut(false);
      showError(err);
    });
  });
}

async function start() {
  on('login-form', 'submit', signIn);
  on('signup', 'click', signUp);
  on('post-form', 'submit', post);
  on('logout', 'click', () => signOut(true));
  const saved = localStorage.getItem(TOKEN_KEY);
  if (saved) {
    try {
      await enterChat(await api('POST', '/authentication', { strategy: 'jwt', accessToken: saved }));
      return;
    } catch (e) {
      localStorage.removeItem(TOKEN_KEY);
      state.token = null;
    }
  }
  $('login').hidden = false;
}

start();
