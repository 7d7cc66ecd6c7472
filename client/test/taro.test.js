'use strict'
// The client suites on a simulated taro object (see platforms.js), against the local stack.
// account.js (DELETE /me) and admin.js (wxadmin) join when those routes land.
require('./suite.js')('taro')
require('./ended.js')('taro')
require('./phone.js')('taro')
